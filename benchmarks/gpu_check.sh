#!/usr/bin/env bash
# The GPU verification of the CuPy backend, in one run on a GPU machine that has CUDA 13,
# CuPy, PyTorch, numpy, networkx and pytest but no internet: pure-Python wheels the
# project lacks there (graphviz) travel in .whl/. Writes its logs and figures to $OUT.
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/minigraph-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, '| numpy', numpy.__version__, '| torch', torch.__version__)"

echo "== op tests on the cupy backend, and cupy-vs-numpy consistency of every op =="
start=$SECONDS
timeout "${TEST_SECONDS:-900}" python3 -m pytest -q -p no:cacheprovider -n "${WORKERS:-8}" -k cupy tests/ops \
  tests/test_backend_consistency.py tests/test_train_cli.py 2>&1 | tee "$OUT/tests.log" | tail -n 5
echo "tests took $((SECONDS - start)) s"

echo "== benchmark: minigraph on CuPy vs PyTorch on the same GPU =="
timeout "${BENCH_SECONDS:-600}" python3 benchmarks/gpu_bench.py --batch 32 --json "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/bench.log"

echo "== minigraph train --backend cupy =="
timeout "${TRAIN_SECONDS:-300}" python3 -m minigraph train --backend cupy --no-progress --out /tmp/gpu-train 2>&1 \
  | tail -n 6 | tee "$OUT/train.log"
