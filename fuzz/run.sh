#!/usr/bin/env bash
# Runs every libFuzzer harness of BUILD_DIR/fuzz for FUZZ_SECONDS each (default 30), one
# after the other, with fuzz/corpus/<harness> as a read-only seed directory and a temporary
# directory as the corpus it writes (the checkout does not change). Prints one line per
# harness; exits non-zero when any harness found a crash, leak, timeout or out-of-memory.
# Logs go to BUILD_DIR/fuzz-logs/<harness>.log, crashing inputs to BUILD_DIR/fuzz-artifacts/.
# Usage: fuzz/run.sh BUILD_DIR [HARNESS...]
set -uo pipefail

build=${1:?usage: fuzz/run.sh BUILD_DIR [HARNESS...]}
shift
secs=${FUZZ_SECONDS:-30}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/fuzz
logs=$build/fuzz-logs
art=$build/fuzz-artifacts
mkdir -p "$logs" "$art"
if (($#)); then harnesses=("$@"); else mapfile -t harnesses <"$bin/harnesses.txt"; fi

# Inputs larger than any real one buys nothing but slower runs: what each harness needs for
# its seeds and some room (chunk files carry a 4 KiB header and a 4 KiB CRC table).
max_len() {
  case $1 in
    chunk_fuzz) echo 32768 ;;
    log_fuzz | snapshot_fuzz) echo 16384 ;;
    journal_fuzz | message_fuzz | command_fuzz | frame_fuzz) echo 8192 ;;
    *) echo 1024 ;;
  esac
}

# Stacks for UBSan findings too; ASan's defaults otherwise (leaks detected at exit of each run).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$(mktemp -d "${TMPDIR:-/tmp}/vstorage-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=0
printf '%-14s %-8s %12s %10s %8s %6s\n' harness result execs execs/s cov time
for h in "${harnesses[@]}"; do
  seeds=$here/corpus/$h
  corpus=$work/$h
  mkdir -p "$corpus"
  rm -f "$art/$h"-*
  log=$logs/$h.log
  start=$(date +%s)
  "$bin/$h" -max_total_time="$secs" -max_len="$(max_len "$h")" -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$art/$h-" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  result=ok
  if ((rc != 0)); then
    failed=1
    if grep -q 'ERROR: libFuzzer: timeout' "$log"; then result=TIMEOUT
    elif grep -q 'out-of-memory' "$log"; then result=OOM
    elif grep -q 'LeakSanitizer' "$log"; then result=LEAK
    else result=CRASH
    fi
  fi
  printf '%-14s %-8s %12s %10s %8s %5ss\n' "$h" "$result" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$took"
  if [ "$result" != ok ]; then
    unit=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
    echo "  input: ${unit:-none written} (reproduce: $bin/$h ${unit:-INPUT})"
    echo "  log:   $log"
    grep -E 'FUZZ CHECK FAILED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" | head -5 |
      sed 's/^/  /'
  fi
done
exit $failed
