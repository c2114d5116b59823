#!/usr/bin/env bash
# GPU check (issue 10): the lab's GPU tests (tests/diffusion/test_cuda.py, test_bf16.py), then
# training and sampling throughput on CIFAR-10-sized data, fp32 against bf16 autocast, eager
# against torch.compile (benchmarks/gpu_check.py), in about 5 minutes:
#     bash benchmarks/gpu_prepare.sh          # here: .whl/ (wheels the GPU image lacks, commit)
#     bash benchmarks/gpu_check.sh            # there: writes benchmarks/results/gpu_check.json
#     bash benchmarks/gpu_check.sh --tiny     # the same code on the CPU at a toy size
# Where the engine's dependencies are missing (the GPU image), .whl/'s wheels are installed into
# a private folder first (no registry there);
# where $OUT names a folder (the device tool's) the results file is copied into it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
if ! "$PY" -c "import pydantic" 2> /dev/null && compgen -G ".whl/*.whl" > /dev/null; then
    site="${TMPDIR:-/tmp}/difflab-gpu-site"
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || exit 1
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" || exit 1
export PYTHONUNBUFFERED=1
tests_rc=0
if [[ " $* " != *" --tiny "* ]] && "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    # the lab's GPU paths first (skipped on machines without CUDA): draws, resume, bf16, chains
    timeout 60 "$PY" -m pytest -q -p no:cacheprovider tests/diffusion/test_cuda.py \
        tests/diffusion/test_bf16.py 2>&1 | tee "${TMPDIR:-/tmp}/gpu_tests.txt"
    tests_rc=${PIPESTATUS[0]}
    if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then cp "${TMPDIR:-/tmp}/gpu_tests.txt" "$OUT/"; fi
fi
timeout 240 "$PY" benchmarks/gpu_check.py "$@"
rc=$?
if [ -n "${OUT:-}" ] && [ -d "$OUT" ] && [ -f benchmarks/results/gpu_check.json ]; then
    cp benchmarks/results/gpu_check.json "$OUT/"
fi
[ "$tests_rc" -ne 0 ] && echo "the GPU tests failed (rc $tests_rc)" && exit "$tests_rc"
exit $rc
