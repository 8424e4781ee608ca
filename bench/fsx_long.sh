#!/usr/bin/env bash
# Long runs of the model-based exerciser (tests/fsx/fsx.cc) on a real 3-CS cluster with
# 1 MiB chunks, three replicas and remounts: bash bench/fsx_long.sh [OPS] [SEEDS]
#   OPS   operations per seed (default 1000000)
#   SEEDS comma-separated seeds (default 1)
# Prints "N operations clean (seed S) in T s" per seed, or the failing sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
make build >/dev/null
VSTORAGE_FSX_OPS="${1:-1000000}" VSTORAGE_FSX_SEEDS="${2:-1}" \
  /usr/bin/python3 -m pytest -q -s tests/system/test_fsx.py::test_fsx_short_run_on_small_chunks
