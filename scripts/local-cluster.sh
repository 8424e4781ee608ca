#!/usr/bin/env bash
# Local cluster for trying vstorage: 1 MDS, N CS (3 by default, VSTORAGE_CS=N for more; each
# its own simulated host, so the default failure domain "host" holds), replicas 3:2 on the
# root, mounted at run/NAME/mnt.
#   scripts/local-cluster.sh start|stop|status [NAME]
# Everything lives under run/NAME/; the real /etc/vstorage is never touched.
set -euo pipefail
cmd=${1:-start}
NAME=${2:-stor1}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/build/bin
RUN=$TOP/run/$NAME
PASSWORD=${VSTORAGE_PASSWORD:-vstorage}
MDS_PORT=${VSTORAGE_MDS_PORT:-2510}
NCS=${VSTORAGE_CS:-3}
case "$NCS" in
  ''|*[!0-9]*) echo "local-cluster: VSTORAGE_CS must be a number of chunk servers (3 or more), not '$NCS'" >&2; exit 2 ;;
esac
if [ "$NCS" -lt 3 ]; then
  echo "local-cluster: replicas=3 needs at least 3 chunk servers; VSTORAGE_CS=$NCS is too few" >&2; exit 2
fi
export VSTORAGE_CONF_DIR=$RUN/conf          # the MDS host and the client
host_conf() { echo "$RUN/hosts/$1/conf"; }  # one config root per simulated CS host

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemon() {  # pidfile logfile conf cmd...
  local pidf=$1 log=$2 conf=$3; shift 3
  if pid_alive "$pidf"; then return 0; fi
  VSTORAGE_CONF_DIR=$conf nohup "$@" >>"$log" 2>&1 &
  echo $! >"$pidf"
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "local-cluster: nothing listens on port $1; see $RUN/*.log" >&2
  return 1
}

start() {
  mkdir -p "$RUN"
  if [ ! -f "$RUN/mds/mds.conf" ]; then
    echo "$PASSWORD" | "$BIN/vstorage" -c "$NAME" make-mds -I -a 127.0.0.1:$MDS_PORT -r "$RUN/mds" -p
  fi
  start_daemon "$RUN/mds.pid" "$RUN/mds.log" "$VSTORAGE_CONF_DIR" "$BIN/vstorage-mdsd" -r "$RUN/mds"
  wait_port $((MDS_PORT + 1))
  # A cluster made earlier with more CS keeps all of them.
  while [ -f "$RUN/cs$((NCS + 1))/cs.conf" ]; do NCS=$((NCS + 1)); done
  for i in $(seq "$NCS"); do
    local conf; conf=$(host_conf cs$i)
    if [ ! -f "$RUN/cs$i/cs.conf" ]; then
      mkdir -p "$conf/clusters/$NAME"
      cp "$VSTORAGE_CONF_DIR/clusters/$NAME/bs.list" "$conf/clusters/$NAME/bs.list"
      echo "$PASSWORD" | VSTORAGE_CONF_DIR=$conf "$BIN/vstorage" -c "$NAME" auth-node
      VSTORAGE_CONF_DIR=$conf "$BIN/vstorage" -c "$NAME" make-cs -r "$RUN/cs$i"
    fi
    start_daemon "$RUN/cs$i.pid" "$RUN/cs$i.log" "$conf" "$BIN/vstorage-csd" -r "$RUN/cs$i"
  done
  mkdir -p "$RUN/mnt"
  if ! mountpoint -q "$RUN/mnt"; then
    "$BIN/vstorage-mount" -c "$NAME" -l "$RUN/mount.log" "$RUN/mnt"
  fi
  # Wait until every CS has registered, then set the replication the issue asks for.
  for _ in $(seq 50); do
    [ "$("$BIN/vstorage" -c "$NAME" stat --json | grep -o '"status":"active"' | wc -l)" -ge "$NCS" ] && break
    sleep 0.2
  done
  "$BIN/vstorage" set-attr -R "$RUN/mnt" replicas=3 >/dev/null
  "$BIN/vstorage" -c "$NAME" stat
  echo
  echo "Cluster '$NAME' is mounted at $RUN/mnt."
  echo "Use it with: export VSTORAGE_CONF_DIR=$VSTORAGE_CONF_DIR; $BIN/vstorage -c $NAME stat"
}

stop() {
  if mountpoint -q "$RUN/mnt" 2>/dev/null; then fusermount3 -u "$RUN/mnt" || umount -l "$RUN/mnt" || true; fi
  for p in "$RUN"/cs*.pid "$RUN"/mds.pid; do
    [ -f "$p" ] || continue
    if pid_alive "$p"; then kill "$(cat "$p")" 2>/dev/null || true; fi
    rm -f "$p"
  done
  echo "Cluster '$NAME' stopped (data kept in $RUN; remove it to start afresh)."
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) "$BIN/vstorage" -c "$NAME" stat ;;
  *) echo "usage: $0 start|stop|status [NAME]" >&2; exit 2 ;;
esac
