#!/usr/bin/env bash
# Recovery speed (issue 3): 5 CS on tmpfs, replicas 3. Writes N GiB, SIGKILLs the CS that
# holds the most replicas, and measures the time until every chunk is healthy again (the
# data that CS held, rebuilt CS-to-CS). Printed beside the raw copy speed of the same chunk
# files on the same tmpfs (cp), in one run.
#   bench/recovery_bench.sh [--size 2G] [--rate MB_PER_S_PER_COPY] [--parallel N]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/build/bin
SIZE=2G
RATE=""
PARALLEL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --parallel) PARALLEL=$2; shift ;;
    *) echo "usage: $0 [--size 2G] [--rate MB/s per copy, 0 = unlimited] [--parallel N]" >&2; exit 2 ;;
  esac
  shift
done
PY=/usr/bin/python3
W=$(mktemp -d /tmp/vsrecbench.XXXXXX)
mkdir -p "$W/tmpfs"
mount -t tmpfs -o size=16G tmpfs "$W/tmpfs"
PIDS=""
cleanup() {
  set +e
  mountpoint -q "$W/mnt" && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  [ -n "$PIDS" ] && kill $PIDS 2>/dev/null
  sleep 1
  umount -l "$W/tmpfs" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

export VSTORAGE_CONF_DIR=$W/conf
vs() { "$BIN/vstorage" -c rbench "$@"; }
PORT=$((20000 + RANDOM % 20000))
echo benchpw | vs make-mds -I -a 127.0.0.1:$PORT -r "$W/tmpfs/mds" -p >/dev/null
"$BIN/vstorage-mdsd" -r "$W/tmpfs/mds" >"$W/mds.log" 2>&1 & PIDS="$PIDS $!"
sleep 0.5
declare -A CSPID
for i in 1 2 3 4 5; do
  c=$W/host$i; mkdir -p "$c/clusters/rbench"; cp "$VSTORAGE_CONF_DIR/clusters/rbench/bs.list" "$c/clusters/rbench/"
  echo benchpw | VSTORAGE_CONF_DIR=$c "$BIN/vstorage" -c rbench auth-node >/dev/null
  VSTORAGE_CONF_DIR=$c "$BIN/vstorage" -c rbench make-cs -r "$W/tmpfs/cs$i" >/dev/null
  VSTORAGE_CONF_DIR=$c "$BIN/vstorage-csd" -r "$W/tmpfs/cs$i" >"$W/cs$i.log" 2>&1 &
  CSPID[$i]=$!; PIDS="$PIDS $!"
done
sleep 3
mkdir -p "$W/mnt"
"$BIN/vstorage-mount" -c rbench -l "$W/mount.log" "$W/mnt"
vs set-attr -R "$W/mnt" replicas=3 >/dev/null
vs set-attr "$W/mnt" chunk-size=64M >/dev/null
[ -n "$RATE" ] && vs set-config "mds.recovery.max_rate_mb=$RATE"
[ -n "$PARALLEL" ] && vs set-config "mds.recovery.parallel=$PARALLEL"
echo "writing $SIZE (replicas 3, 64 MiB chunks) ..."
fio --name=fill --directory="$W/mnt" --filename=data --rw=write --bs=1M --size="$SIZE" \
    --ioengine=psync --end_fsync=1 >/dev/null
SUM_BEFORE=$(sha256sum "$W/mnt/data" | cut -d' ' -f1)

# The CS with the most replicas is the victim.
read -r VICTIM_ID VICTIM_N < <(vs stat --json | $PY -c '
import json,sys
s=json.load(sys.stdin)
c=max(s["cs"], key=lambda c: c["replicas"])
print(c["id"], len([x for x in s["cs"] if x["id"] <= c["id"]]))')
VREPO=$W/tmpfs/cs$VICTIM_N
BYTES=$(du -sb "$VREPO/chunks" | cut -f1)
REPLICAS=$(ls "$VREPO/chunks" | wc -l)

# Raw copy of the same files on the same tmpfs.
sync; echo 3 >/proc/sys/vm/drop_caches
T0=$(date +%s.%N)
cp -r "$VREPO/chunks" "$W/tmpfs/rawcopy"
sync
T1=$(date +%s.%N)
RAW_S=$($PY -c "print($T1-$T0)")
rm -rf "$W/tmpfs/rawcopy"

OFFLINE_MS=2000
vs set-config mds.wd.offline_tout=$OFFLINE_MS
echo "killing CS#$VICTIM_ID ($REPLICAS replicas, $((BYTES / 1048576)) MiB) ..."
kill -9 "${CSPID[$VICTIM_N]}"
TK=$(date +%s.%N)
# Offline after mds.wd.offline_tout; then recovery until every chunk is healthy.
TOFF=""
while :; do
  st=$(vs stat --json)
  now=$(date +%s.%N)
  r=$(echo "$st" | $PY -c '
import json,sys
s=json.load(sys.stdin); v='"$VICTIM_ID"'
cs=[c for c in s["cs"] if c["id"]==v][0]
ch=s["chunks"]
print(cs["status"], "yes" if ch["healthy"]==ch["total"] and cs["replicas"]==0 else "no")')
  set -- $r
  [ -z "$TOFF" ] && [ "$1" = offline ] && TOFF=$now
  [ -n "$TOFF" ] && [ "$2" = yes ] && break
  sleep 0.2
done
TH=$(date +%s.%N)
SUM_AFTER=$(sha256sum "$W/mnt/data" | cut -d' ' -f1)
[ "$SUM_BEFORE" = "$SUM_AFTER" ] || { echo "DATA MISMATCH after recovery" >&2; exit 1; }
REC_S=$($PY -c "print($TH-$TOFF)")
TOTAL_S=$($PY -c "print($TH-$TK)")
CONF=$(vs get-config | grep -E 'mds.recovery' | tr '\n' ' ')
$PY - "$BYTES" "$REC_S" "$RAW_S" "$TOTAL_S" "$CONF" <<'PYEOF'
import sys
b, rec, raw, total, conf = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
mb = b / 1e6
print()
print("recovery of one CS (5 CS on tmpfs, replicas 3); " + conf.strip())
print("%-34s %10s %10s %8s" % ("", "seconds", "MB/s", "ratio"))
print("%-34s %10.2f %10.1f %8.2f" % ("raw copy of its chunk files (cp)", raw, mb / raw, 1.0))
print("%-34s %10.2f %10.1f %8.2f" % ("vstorage rebuild (offline->healthy)", rec, mb / rec, (mb / rec) / (mb / raw)))
print("%-34s %10.2f" % ("from SIGKILL (incl. offline_tout)", total))
print("data rebuilt: %.0f MB; sha256 of the file unchanged" % mb)
PYEOF
