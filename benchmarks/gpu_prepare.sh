#!/usr/bin/env bash
# Prepare the GPU check (benchmarks/gpu_check.sh) for a lent GPU machine. Run it here, where pip
# reaches the package registry: the GPU machine has PyTorch, numpy and scikit-image but not the
# engine's other dependencies, and reaches no registry. This writes into .whl/ (ignored by git;
# the device tool carries it: carry=[".whl"]):
#   - wheels of the engine's dependencies that the GPU image lacks (pydantic and its own), at
#     the versions installed here, for the GPU machine's Python (DEVICE_PYTHON, default 3.12);
#   - SOURCE_COMMIT: the commit checked (and "dirty" where the tree differs from it), which the
#     results record: the copy of the tree there has no .git.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ]; then PY=.venv/bin/python; fi
DEVICE_PYTHON="${DEVICE_PYTHON:-3.12}"
PKGS="pydantic pydantic-core annotated-types typing-inspection typing-extensions"
pins=$("$PY" -c "
import sys
from importlib.metadata import version
print(' '.join(f'{n}=={version(n)}' for n in sys.argv[1:]))
" $PKGS)
rm -rf .whl && mkdir .whl
# shellcheck disable=SC2086  # the pins are separate words
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl $pins
commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then commit="$commit dirty"; fi
echo "$commit" > .whl/SOURCE_COMMIT
ls .whl
echo "then, on the GPU machine (device tool: carry=[\".whl\"]): bash benchmarks/gpu_check.sh"
