#!/usr/bin/env bash
# fio on a vstorage mount (3 CS on tmpfs, replicas 3) beside the same fio on the tmpfs itself,
# and with --with-moosefs on MooseFS (1 master, 3 chunkservers on the same tmpfs, goal 3),
# in one run. Prints MB/s or IOPS per test and the ratio to tmpfs.
#   bench/fio_bench.sh [--with-moosefs] [--size 1G] [--runtime 15]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/build/bin
SIZE=1G
RUNTIME=15
MOOSE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --with-moosefs) MOOSE=1 ;;
    --size) SIZE=$2; shift ;;
    --runtime) RUNTIME=$2; shift ;;
    *) echo "usage: $0 [--with-moosefs] [--size 1G] [--runtime 15]" >&2; exit 2 ;;
  esac
  shift
done
[ $MOOSE = 1 ] && bash "$TOP/scripts/install-deps.sh" --bench
W=$(mktemp -d /tmp/vsbench.XXXXXX)
chmod 755 "$W"  # the MooseFS daemons run as user mfs
mkdir -p "$W/tmpfs"
mount -t tmpfs -o size=12G tmpfs "$W/tmpfs"
cleanup() {
  set +e
  for m in "$W/vsmnt" "$W/mfsmnt"; do mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }; done
  [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null
  for i in 1 2 3; do mfschunkserver -c "$W/mfs/cs$i.cfg" stop >/dev/null 2>&1; done
  mfsmaster -c "$W/mfs/mfsmaster.cfg" stop >/dev/null 2>&1
  ip link del vsbench0 2>/dev/null
  sleep 1
  umount -l "$W/tmpfs" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
PIDS=""

fio_run() {  # dir name rw bs -> prints "bw_MBps iops"
  local dir=$1 name=$2 rw=$3 bs=$4 extra=()
  [ "$rw" = read ] || [ "$rw" = randread ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  case "$rw" in randread|randwrite) extra=(--time_based --runtime="$RUNTIME") ;; esac
  fio --name="$name" --directory="$dir" --filename=bench.dat --rw="$rw" --bs="$bs" --size="$SIZE" \
      --ioengine=psync --numjobs=1 --end_fsync=1 "${extra[@]}" --output-format=json 2>/dev/null |
    /usr/bin/python3 -c '
import json,sys
j=json.load(sys.stdin)["jobs"][0]
op=j["read"] if j["read"]["io_bytes"]>0 else j["write"]
print("%.1f %.0f" % (op["bw_bytes"]/1048576.0, op["iops"]))'
}

run_suite() {  # dir label
  local dir=$1 label=$2
  fio_run "$dir" w write 1M >"$W/$label.seqw"
  fio_run "$dir" r read 1M >"$W/$label.seqr"
  fio_run "$dir" rw randwrite 4k >"$W/$label.randw"
  fio_run "$dir" rr randread 4k >"$W/$label.randr"
  rm -f "$dir/bench.dat"
}

# --- vstorage on tmpfs ---
export VSTORAGE_CONF_DIR=$W/conf
PORT=$((20000 + RANDOM % 20000))
echo benchpw | "$BIN/vstorage" -c bench make-mds -I -a 127.0.0.1:$PORT -r "$W/tmpfs/mds" -p >/dev/null
"$BIN/vstorage-mdsd" -r "$W/tmpfs/mds" >"$W/mds.log" 2>&1 & PIDS="$PIDS $!"
sleep 0.5
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
mkdir -p "$W/tmpfs/ref"
run_suite "$W/tmpfs/ref" tmpfs
run_suite "$W/vsmnt" vstorage
COLS="tmpfs vstorage"

if [ $MOOSE = 1 ]; then
  M=$W/mfs; mkdir -p "$M/meta" "$W/mfsmnt"
  # mfschunkserver refuses 127.0.0.0/8 for its master: use this machine's own address
  # (traffic to it never leaves the host), or a veth pair made for the run.
  MFS_IP=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
  if [ -z "$MFS_IP" ]; then
    ip link add vsbench0 type veth peer name vsbench1
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
  run_suite "$W/mfsmnt" moosefs
  COLS="$COLS moosefs"
fi

/usr/bin/python3 - "$W" $COLS <<'PY'
import sys
w, cols = sys.argv[1], sys.argv[2:]
tests = [("seqw", "1M seq write", 0, "MB/s"), ("seqr", "1M seq read (cold)", 0, "MB/s"),
         ("randw", "4K rand write", 1, "IOPS"), ("randr", "4K rand read", 1, "IOPS")]
hdr = f"{'test':22}" + "".join(f"{c:>14}" for c in cols) + "".join(f"{c + '/tmpfs':>18}" for c in cols[1:])
print(hdr)
for key, name, idx, unit in tests:
    vals = [float(open(f"{w}/{c}.{key}").read().split()[idx]) for c in cols]
    row = f"{name + ' ' + unit:22}" + "".join(f"{v:14.1f}" for v in vals)
    row += "".join(f"{(v / vals[0] if vals[0] else 0):18.3f}" for v in vals[1:])
    print(row)
PY
