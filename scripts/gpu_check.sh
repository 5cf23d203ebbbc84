#!/usr/bin/env bash
# The GPU check in one call (at most 8 minutes on one GPU): the CUDA-relevant tests, then benchmarks/gpu_check.py
# (the engine's CUDA path on paper-scale units against the shipped CPU results), its table into
# benchmarks/results/gpu_check.md and, where $OUT is set, beside the test log in $OUT.
# The GPU machine has python3 with torch, pandas, scipy, sympy, matplotlib, pytest and tqdm, but no package registry
# and no Debian data package: the data travels as .gpu-data/ (git-ignored), made here by `--prepare`.
#   bash scripts/gpu_check.sh --prepare   # here: copy the four Fashion-MNIST IDX files (26 MB) into .gpu-data/
#   bash scripts/gpu_check.sh             # there (carry .gpu-data)
#   bash scripts/gpu_check.sh --dry-run   # anywhere: seconds-sized settings on whatever device there is
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python
export PYTHONUNBUFFERED=1

case "${1:-}" in
  --prepare)
    system=${FASHION_MNIST_SYSTEM_DIR:-/usr/share/datasets/fashion-mnist}
    mkdir -p .gpu-data/FashionMNIST/raw
    cp "$system"/*-ubyte.gz .gpu-data/FashionMNIST/raw/
    du -sh .gpu-data
    exit 0 ;;
  --dry-run)
    exec "$python" -m benchmarks.gpu_check --dry-run ;;
esac

[ -d .gpu-data ] && export EARLY_DYNAMICS_DATA="$PWD/.gpu-data"
out=${OUT:-/tmp}
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$python" -m pytest -q -p no:cacheprovider -x tests/test_curvature.py tests/test_stack.py tests/test_slicing.py \
  > "$out/gpu_tests.log" 2>&1 || { tail -n 30 "$out/gpu_tests.log"; echo "gpu_check: tests failed" >&2; }
tail -n 2 "$out/gpu_tests.log"
timeout 400 "$python" -m benchmarks.gpu_check --budget 300 "$@"
[ -n "${OUT:-}" ] && cp benchmarks/results/gpu_check.md "$OUT/"
exit 0
