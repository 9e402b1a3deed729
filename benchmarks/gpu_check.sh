#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): the loss property tests on cuda in four dtypes,
# out-of-range indices on cuda, /v1/evaluate on cuda, a training job on cuda, and the large
# loss requests on cuda beside cpu; one summary table. No network; under 10 minutes.
#   bash benchmarks/gpu_check.sh                     # exit 0 passed, 1 failed, 3 no GPU found, 124 over 10 min
#   bash benchmarks/gpu_check.sh --rehearse-on-cpu   # the same steps on the CPU
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
exec timeout 600 python benchmarks/gpu_check.py "$@"
