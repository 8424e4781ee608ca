#!/usr/bin/env bash
# fio on a vstorage mount (3 CS on tmpfs, replicas 3) beside the same fio on the tmpfs itself,
# and with --with-moosefs on MooseFS (1 master, 3 chunkservers on the same tmpfs, goal 3),
# in one run. Prints MB/s or IOPS per test and the ratio to tmpfs.
#   bench/fio_bench.sh [--with-moosefs] [--size 1G] [--runtime 15]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
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
source "$TOP/bench/cluster_lib.sh"
cl_init 12G

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
vs_start
mkdir -p "$W/tmpfs/ref"
run_suite "$W/tmpfs/ref" tmpfs
run_suite "$W/vsmnt" vstorage
COLS="tmpfs vstorage"

if [ $MOOSE = 1 ]; then
  mfs_start
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
