#!/usr/bin/env bash
# GPU check (issue 10): training and sampling throughput on CIFAR-10-sized data, fp32 against
# bf16 autocast, eager against torch.compile, on a lent GPU machine in under 5 minutes:
#     bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check.json
#     bash benchmarks/gpu_check.sh --tiny     # the same code on the CPU at a toy size
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec timeout 290 "$PY" benchmarks/gpu_check.py "$@"
