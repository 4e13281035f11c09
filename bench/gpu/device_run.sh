#!/usr/bin/env bash
# Everything issue 7 needs from a GPU machine, in one device call:
#   run(command="bash bench/gpu/device_run.sh", carry=[".whl"], timeout_s=540)
# after scripts/gpu/fetch_wheels.sh here (docs/gpu.md, "On the lent GPU machine"). Writes
# env.txt, tests.log, bench.log and gpu_decode.json to $OUT; a failing step is logged and the
# next one still runs.
set -uo pipefail
OUT=${OUT:-/tmp/stacklens-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TRANSFORMERS_OFFLINE=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}

if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { echo "wheel install failed" >&2; exit 3; }
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "no .whl/: run scripts/gpu/fetch_wheels.sh here and carry .whl" >&2
    export PYTHONPATH=$PWD
fi

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv
    "$PY" -c 'import sys, torch, transformers, tokenizers; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0)); print("transformers", transformers.__version__, "tokenizers", tokenizers.__version__)'
    "$PY" -c 'import flash_attn; print("flash_attn", flash_attn.__version__)' 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== tests (fast path, CUDA graphs included)"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -p no:schemathesis -o addopts="-ra" \
    tests/completion/test_completion_fastpath.py 2>&1 | tee "$OUT/tests.log" | tail -25

echo "== bench (Qwen2.5-Coder-1.5B shapes, bf16)"
timeout 240 "$PY" bench/gpu/bench_decode.py --json "$OUT/gpu_decode.json" 2>&1 | tee "$OUT/bench.log"
echo "== done: $(ls "$OUT")"
