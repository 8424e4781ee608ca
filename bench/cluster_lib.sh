# Sourced by the benchmarks in bench/: one tmpfs, a vstorage cluster on it (1 MDS + 3 CS,
# replicas 3, FUSE mount) and, on request, MooseFS from Debian's packages on the same tmpfs
# (1 master + 3 chunkservers, goal 3, mfsmount). Needs root (mount, MooseFS daemons as mfs).
#
#   source bench/cluster_lib.sh
#   cl_init 12G            # $W: work dir, $W/tmpfs mounted; cleanup trapped on EXIT
#   vs_start               # $W/vsmnt
#   mfs_start              # $W/mfsmnt
#
# Every daemon, mount, the veth pair (if made) and the tmpfs are removed by cl_cleanup, which
# runs on EXIT (also after a failure under set -e, or on INT/TERM).
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BIN=${BIN:-$TOP/${VSTORAGE_BUILD:-build}/bin}
PIDS=""

cl_stop_daemons() {  # unmounts both file systems and stops every daemon; the tmpfs stays
  set +e
  [ -n "${W:-}" ] || return 0
  for m in "$W/vsmnt" "$W/mfsmnt"; do
    mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  if [ -n "${PIDS:-}" ]; then
    kill $PIDS 2>/dev/null
    wait $PIDS 2>/dev/null
    PIDS=""
  fi
  if [ -d "$W/mfs" ]; then
    for i in 1 2 3; do [ -f "$W/mfs/cs$i.cfg" ] && mfschunkserver -c "$W/mfs/cs$i.cfg" stop >/dev/null 2>&1; done
    [ -f "$W/mfs/mfsmaster.cfg" ] && mfsmaster -c "$W/mfs/mfsmaster.cfg" stop >/dev/null 2>&1
  fi
  [ "${CL_VETH:-0}" = 1 ] && ip link del vsbench0 2>/dev/null && CL_VETH=0
  set -e
}

cl_cleanup() {  # everything: daemons, mounts, veth, the tmpfs and the work dir
  [ -n "${W:-}" ] || return 0
  cl_stop_daemons
  set +e
  sleep 1
  mountpoint -q "$W/tmpfs" 2>/dev/null && umount -l "$W/tmpfs"
  rm -rf "$W"
  W=""
}

cl_init() {  # tmpfs size
  W=$(mktemp -d /tmp/vsbench.XXXXXX)
  chmod 755 "$W"  # the MooseFS daemons run as user mfs
  trap cl_cleanup EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$W/tmpfs"
  mount -t tmpfs -o "size=$1" tmpfs "$W/tmpfs"
}

vs_start() {  # 1 MDS + 3 CS on $W/tmpfs, mounted at $W/vsmnt with replicas=3
  export VSTORAGE_CONF_DIR=$W/conf
  local port=$((20000 + RANDOM % 20000)) i c
  echo benchpw | "$BIN/vstorage" -c bench make-mds -I -a 127.0.0.1:$port -r "$W/tmpfs/mds" -p >/dev/null
  "$BIN/vstorage-mdsd" -r "$W/tmpfs/mds" >"$W/mds.log" 2>&1 & PIDS="$PIDS $!"
  sleep 0.5
  # VS_ENCRYPTION=0: plaintext connections (set before any CS or mount registers)
  if [ "${VS_ENCRYPTION:-1}" = 0 ]; then "$BIN/vstorage" -c bench set-config gen.encryption=0 >/dev/null; fi
  for i in 1 2 3; do
    c=$W/host$i; mkdir -p "$c/clusters/bench"; cp "$VSTORAGE_CONF_DIR/clusters/bench/bs.list" "$c/clusters/bench/"
    echo benchpw | VSTORAGE_CONF_DIR=$c "$BIN/vstorage" -c bench auth-node >/dev/null
    VSTORAGE_CONF_DIR=$c "$BIN/vstorage" -c bench make-cs -r "$W/tmpfs/cs$i" >/dev/null
    VSTORAGE_CONF_DIR=$c "$BIN/vstorage-csd" -r "$W/tmpfs/cs$i" >"$W/cs$i.log" 2>&1 & PIDS="$PIDS $!"
  done
  sleep 3
  mkdir -p "$W/vsmnt"
  "$BIN/vstorage-mount" -c bench -l "$W/mount.log" "$W/vsmnt"
  "$BIN/vstorage" set-attr -R "$W/vsmnt" replicas=3 >/dev/null
}

mfs_start() {  # MooseFS master + 3 chunkservers on $W/tmpfs, mounted at $W/mfsmnt with goal 3
  M=$W/mfs; mkdir -p "$M/meta" "$W/mfsmnt"
  # mfschunkserver refuses 127.0.0.0/8 for its master: use this machine's own address
  # (traffic to it never leaves the host), or a veth pair made for the run.
  MFS_IP=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
  if [ -z "$MFS_IP" ]; then
    ip link add vsbench0 type veth peer name vsbench1
    CL_VETH=1
    ip addr add 10.233.0.1/30 dev vsbench0; ip link set vsbench0 up; ip link set vsbench1 up
    MFS_IP=10.233.0.1
  fi
  echo "MFS" >"$M/meta/metadata.mfs"; cp /var/lib/mfs/metadata.mfs.empty "$M/meta/metadata.mfs" 2>/dev/null || true
  cat >"$M/mfsmaster.cfg" <<CFG
DATA_PATH = $M/meta
MATOCS_LISTEN_PORT = 19420
MATOCL_LISTEN_PORT = 19421
MATOML_LISTEN_PORT = 19419
EXPORTS_FILENAME = $M/mfsexports.cfg
TOPOLOGY_FILENAME = $M/mfstopology.cfg
CFG
  echo "* / rw,alldirs,maproot=0" >"$M/mfsexports.cfg"
  : >"$M/mfstopology.cfg"
  chown -R mfs:mfs "$M" 2>/dev/null || true
  mfsmaster -c "$M/mfsmaster.cfg" start >"$W/mfsmaster.log" 2>&1 || { cat "$W/mfsmaster.log" >&2; exit 1; }
  local i
  for i in 1 2 3; do
    mkdir -p "$W/tmpfs/mfscs$i" "$M/cs$i"; chown -R mfs:mfs "$W/tmpfs/mfscs$i" "$M/cs$i" 2>/dev/null || true
    echo "$W/tmpfs/mfscs$i" >"$M/hdd$i.cfg"
    cat >"$M/cs$i.cfg" <<CFG
DATA_PATH = $M/cs$i
HDD_CONF_FILENAME = $M/hdd$i.cfg
MASTER_HOST = $MFS_IP
MASTER_PORT = 19420
CSSERV_LISTEN_PORT = $((19422 + i))
CFG
    mfschunkserver -c "$M/cs$i.cfg" start >"$W/mfscs$i.log" 2>&1 || { cat "$W/mfscs$i.log" >&2; exit 1; }
  done
  sleep 3
  mfsmount "$W/mfsmnt" -H "$MFS_IP" -P 19421 >"$W/mfsmount.log" 2>&1 || { cat "$W/mfsmount.log" >&2; exit 1; }
  mfssetgoal -r 3 "$W/mfsmnt" >/dev/null 2>&1 || mfssetsclass -r 3 "$W/mfsmnt" >/dev/null 2>&1 || true
}
