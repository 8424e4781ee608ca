#!/usr/bin/env bash
# Six fio jobs on vstorage (1 MDS + 3 CS on one tmpfs, replicas 3, FUSE mount, default chunk
# sizes), with --with-moosefs on MooseFS (1 master + 3 chunkservers on the same tmpfs, goal 3,
# mfsmount), and on the tmpfs itself, in one run; page cache dropped before every job:
#   1 seq write 1 MiB psync, 2 GiB, end_fsync=1
#   2 seq write 1 MiB psync, 4 jobs x 512 MiB, group_reporting, end_fsync=1
#   3 seq read 1 MiB psync, cold, the file of job 1 (run right after job 1, before job 2:
#     the 2 GiB file is removed before job 2, which keeps the tmpfs peak at 3 x 2 GiB)
#   4 rand write 4 KiB libaio iodepth=16 direct=1, 20 s, on a 1 GiB file laid out before
#   5 rand read  4 KiB libaio iodepth=16 direct=1, 20 s, same file
#   6 rand read  4 KiB psync iodepth=1 direct=1, 20 s, same file
# Plus a "ceiling" for the write jobs (the same bytes through 3 chained loopback TCP hops,
# bench/loopback_ceiling.py) and CPU-seconds per GiB written by jobs 1+2 (utime+stime of all
# daemons and the FUSE mount process, from /proc/PID/stat).
#   bench/fio_bench.sh [--with-moosefs] [--with-plaintext] [--size 2G] [--randsize 1G] [--runtime 20] [--json PATH]
# --size is job 1's file (job 2 writes 4 x size/4); VSTORAGE_BUILD=build-x picks the build.
# --with-plaintext: vstorage a second time with gen.encryption=0 (column vstorage-plain), and
# the cost of TLS as the ratio vstorage/vstorage-plain (issue 13 item 5).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
SIZE=2G
RANDSIZE=1G
RUNTIME=20
MOOSE=0
PLAIN=0
JSON=""
usage() { echo "usage: $0 [--with-moosefs] [--with-plaintext] [--size 2G] [--randsize 1G] [--runtime 20] [--json PATH]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --with-moosefs) MOOSE=1 ;;
    --with-plaintext) PLAIN=1 ;;
    --size) SIZE=${2:?}; shift ;;
    --randsize) RANDSIZE=${2:?}; shift ;;
    --runtime) RUNTIME=${2:?}; shift ;;
    --json) JSON=${2:?}; shift ;;
    *) usage ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "$0: needs root (tmpfs, FUSE, drop_caches)" >&2; exit 1; }
if [ $MOOSE = 1 ]; then bash "$TOP/scripts/install-deps.sh" --bench; else bash "$TOP/scripts/install-deps.sh"; fi
SIZE_B=$(numfmt --from=iec "$SIZE")
RANDSIZE_B=$(numfmt --from=iec "$RANDSIZE")
PART_B=$((SIZE_B / 4))
source "$TOP/bench/cluster_lib.sh"
[ -x "$BIN/vstorage-mount" ] || { echo "$0: no $BIN/vstorage-mount (make build, or set VSTORAGE_BUILD)" >&2; exit 1; }
# 3 copies of the largest set of live files (job 1's file, or job 2's, or the random file
# plus what a lazy delete still holds), MDS and slack
cl_init $(( (SIZE_B * 6 + RANDSIZE_B * 3) / 1048576 + 2048 ))M
R=$W/results; mkdir -p "$R"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

log() { echo "[fio_bench $(date -u +%H:%M:%S)] $*" >&2; }

# Seconds of CPU (utime+stime, all threads) of this run's daemons and mount processes of one
# file system: processes whose command name is listed and whose command line names $W.
cpu_seconds() {  # comm...
  "$PY" - "$W" "$@" <<'PY'
import os, sys
w, names = sys.argv[1], set(sys.argv[2:])
tck = os.sysconf("SC_CLK_TCK")
tot, seen = 0, []
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        comm = open(f"/proc/{p}/comm").read().strip()
        cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        st = open(f"/proc/{p}/stat").read()
    except OSError:
        continue
    if comm not in names or w not in cmd:
        continue
    f = st[st.rindex(")") + 2:].split()
    tot += int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
    seen.append(f"{comm}:{p}")
print("%.2f" % (tot / tck))
print(" ".join(sorted(seen)), file=sys.stderr)
PY
}

# fio, JSON to $R/<label>.<key>.json; prints nothing. Fails the run if fio fails.
fio_job() {  # label key dir fio-args...
  local label=$1 key=$2 dir=$3; shift 3
  drop_caches
  log "$label job $key"
  fio --name="$key" --directory="$dir" --output-format=json --output="$R/$label.$key.json" "$@" \
    || { echo "$0: fio $key on $label failed:" >&2; cat "$R/$label.$key.json" >&2; exit 1; }
}

run_suite() {  # dir label "comm..." (empty for the tmpfs: no CPU accounting)
  local dir=$1 label=$2 comms=$3 c0 c1 direct=1
  c0=$( [ -n "$comms" ] && cpu_seconds $comms 2>"$R/$label.cpu_procs" || echo 0)
  fio_job "$label" 1 "$dir" --filename=seq1.dat --rw=write --bs=1M --ioengine=psync \
    --size="$SIZE_B" --end_fsync=1
  c1=$( [ -n "$comms" ] && cpu_seconds $comms 2>>"$R/$label.cpu_procs" || echo 0)
  fio_job "$label" 3 "$dir" --filename=seq1.dat --rw=read --bs=1M --ioengine=psync --size="$SIZE_B"
  rm -f "$dir/seq1.dat"
  sync
  local c2 c3
  c2=$( [ -n "$comms" ] && cpu_seconds $comms 2>>"$R/$label.cpu_procs" || echo 0)
  fio_job "$label" 2 "$dir" --filename_format='seq2.$jobnum' --rw=write --bs=1M --ioengine=psync \
    --size="$PART_B" --numjobs=4 --group_reporting --end_fsync=1
  c3=$( [ -n "$comms" ] && cpu_seconds $comms 2>>"$R/$label.cpu_procs" || echo 0)
  echo "$c0 $c1 $c2 $c3" >"$R/$label.cpu"
  [ -n "$comms" ] && log "$label CPU counted for: $(tail -1 "$R/$label.cpu_procs")"
  rm -f "$dir"/seq2.*
  sync
  # lay the random file out (not measured), then the three random jobs on it
  log "$label layout $RANDSIZE"
  fio --name=layout --directory="$dir" --filename=rand.dat --rw=write --bs=1M --ioengine=psync \
    --size="$RANDSIZE_B" --end_fsync=1 --output=/dev/null
  if ! dd if="$dir/rand.dat" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
    log "$label: O_DIRECT refused, random jobs run with direct=0"; direct=0; echo "$label" >>"$R/nodirect"
  fi
  local common=(--filename=rand.dat --bs=4k --size="$RANDSIZE_B" --direct=$direct --time_based
                --runtime="$RUNTIME" --randrepeat=0)
  fio_job "$label" 4 "$dir" "${common[@]}" --rw=randwrite --ioengine=libaio --iodepth=16
  fio_job "$label" 5 "$dir" "${common[@]}" --rw=randread --ioengine=libaio --iodepth=16
  fio_job "$label" 6 "$dir" "${common[@]}" --rw=randread --ioengine=psync --iodepth=1
  rm -f "$dir/rand.dat"
  sync
}

log "work dir $W, binaries $BIN, size $SIZE, random file $RANDSIZE, runtime ${RUNTIME}s"
COLS="vstorage"

# --- ceiling: the write jobs' bytes through 3 loopback hops (nothing else running) ---
log "ceiling (loopback, 3 hops)"
"$PY" "$TOP/bench/loopback_ceiling.py" --bytes "$SIZE_B" --streams 1 --hops 3 >"$R/ceiling.1"
"$PY" "$TOP/bench/loopback_ceiling.py" --bytes "$PART_B" --streams 4 --hops 3 >"$R/ceiling.2"

# --- the tmpfs itself ---
mkdir -p "$W/tmpfs/ref"
run_suite "$W/tmpfs/ref" tmpfs ""
rm -rf "$W/tmpfs/ref"

# --- vstorage; stopped (and its chunks removed) before MooseFS starts ---
log "starting vstorage"
vs_start
run_suite "$W/vsmnt" vstorage "vstorage-mdsd vstorage-csd vstorage-mount"
cl_stop_daemons
rm -rf "$W"/tmpfs/cs? "$W/tmpfs/mds"

if [ $PLAIN = 1 ]; then
  log "starting vstorage with gen.encryption=0"
  rm -rf "$W/conf" "$W"/host?
  VS_ENCRYPTION=0 vs_start
  run_suite "$W/vsmnt" vstorage-plain "vstorage-mdsd vstorage-csd vstorage-mount"
  COLS="$COLS vstorage-plain"
  cl_stop_daemons
  rm -rf "$W"/tmpfs/cs? "$W/tmpfs/mds"
fi

if [ $MOOSE = 1 ]; then
  log "starting MooseFS"
  mfs_start
  log "MooseFS goal: $( (mfsgetgoal "$W/mfsmnt" || mfsgetsclass "$W/mfsmnt") 2>&1 | tr '\n' ' ')"
  run_suite "$W/mfsmnt" moosefs "mfsmaster mfschunkserver mfsmount"
  COLS="$COLS moosefs"
  cl_stop_daemons
fi

"$PY" - "$R" "$SIZE_B" "$PART_B" "$JSON" $COLS <<'PY'
import json, os, sys
r, size, part, out, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
fss = cols + ["tmpfs"]
def job(fs, k):
    j = json.load(open(f"{r}/{fs}.{k}.json"))["jobs"][0]
    return j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
def mibs(fs, k): return job(fs, k)["bw_bytes"] / 1048576.0
def iops(fs, k): return job(fs, k)["iops"]
def p99(fs, k): return job(fs, k)["clat_ns"]["percentile"]["99.000000"] / 1e6
def mean(fs, k): return job(fs, k)["lat_ns"]["mean"] / 1e6
ceil = {k: json.load(open(f"{r}/ceiling.{k}"))["client_MiBps"] for k in ("1", "2")}
rows = [  # name, unit, getter, key, ratio kind
    ("1 seq write 1M psync %s" % (f"{size >> 20}M"), "MiB/s", mibs, "1"),
    ("2 seq write 1M 4x%s" % (f"{part >> 20}M"), "MiB/s", mibs, "2"),
    ("3 seq read 1M cold", "MiB/s", mibs, "3"),
    ("4 rand write 4K QD16", "IOPS", iops, "4"),
    ("4 rand write 4K QD16 p99", "ms", p99, "4"),
    ("5 rand read 4K QD16", "IOPS", iops, "5"),
    ("5 rand read 4K QD16 p99", "ms", p99, "5"),
    ("6 rand read 4K QD1", "IOPS", iops, "6"),
    ("6 rand read 4K QD1 mean", "ms", mean, "6"),
    ("6 rand read 4K QD1 p99", "ms", p99, "6"),
]
table = []
for name, unit, get, k in rows:
    v = {fs: get(fs, k) for fs in fss}
    row = {"job": name, "unit": unit, **{fs: v[fs] for fs in fss},
           "ceiling": ceil.get(k) if get is mibs else None}
    row["ratio_vstorage_moosefs"] = (v["vstorage"] / v["moosefs"]) if "moosefs" in v and v["moosefs"] else None
    row["ratio_tls_plain"] = (v["vstorage"] / v["vstorage-plain"]) if v.get("vstorage-plain") else None
    table.append(row)
gib = (size + 4 * part) / 2**30
cpu = {}
for fs in cols:
    c0, c1, c2, c3 = map(float, open(f"{r}/{fs}.cpu").read().split())
    cpu[fs] = {"job1": (c1 - c0) / (size / 2**30), "job2": (c3 - c2) / (4 * part / 2**30),
               "jobs1+2": ((c1 - c0) + (c3 - c2)) / gib}
for k, label in (("job1", "CPU-s/GiB written, job 1"), ("job2", "CPU-s/GiB written, job 2"),
                 ("jobs1+2", "CPU-s/GiB written, jobs 1+2")):
    row = {"job": label, "unit": "s/GiB", **{fs: cpu[fs][k] for fs in cols}, "tmpfs": None, "ceiling": None}
    row["ratio_vstorage_moosefs"] = (cpu["vstorage"][k] / cpu["moosefs"][k]) if "moosefs" in cpu and cpu["moosefs"][k] else None
    row["ratio_tls_plain"] = (cpu["vstorage"][k] / cpu["vstorage-plain"][k]) if cpu.get("vstorage-plain", {}).get(k) else None
    table.append(row)
nodirect = open(f"{r}/nodirect").read().split() if os.path.exists(f"{r}/nodirect") else []
def f(x): return "-" if x is None else ("%.0f" % x if x >= 1000 else "%.3g" % x if x < 10 else "%.1f" % x)
hdr = ["job", "unit"] + fss + ["ceiling", "vstorage/MooseFS" if "moosefs" in fss else ""]
w0 = max(len(t["job"]) for t in table)
plain = "vstorage-plain" in fss
print(f"{hdr[0]:<{w0}} {hdr[1]:>6}" + "".join(f"{h:>{15 if h == 'vstorage-plain' else 10}}" for h in hdr[2:-1])
      + f"{hdr[-1]:>18}" + (f"{'tls/plain':>11}" if plain else ""))
for t in table:
    print(f"{t['job']:<{w0}} {t['unit']:>6}" + "".join(f"{f(t.get(fs)):>{15 if fs == 'vstorage-plain' else 10}}" for fs in fss)
          + f"{f(t['ceiling']):>10}" + (f"{f(t['ratio_vstorage_moosefs']):>18}" if "moosefs" in fss else f"{'':>18}")
          + (f"{f(t['ratio_tls_plain']):>11}" if plain else ""))
if nodirect:
    print("O_DIRECT refused on: %s (its random jobs ran with direct=0)" % " ".join(nodirect))
print("ratio rows in ms (latency) are latency vstorage/MooseFS; ceiling = client MiB/s of the same bytes through 3 loopback TCP hops")
if out:
    json.dump({"rows": table, "nodirect": nodirect, "size": size, "part": part}, open(out, "w"), indent=1)
PY
