#!/usr/bin/env bash
# Creates the virtual environment with everything the tests and the demo need.
# torch is pinned first: on a CPU machine torch==2.13.0 resolves to a local CPU wheel, and with it
# installed the `model` extra's range is already satisfied, so pip never pulls CUDA packages.
set -euo pipefail
PY=${PY:-python3.11}
VENV=${VENV:-.venv}
TORCH_SPEC=${STACKLENS_TORCH_SPEC:-torch==2.13.0}
# The versions the tests last passed with (scripts/lock.sh writes them); STACKLENS_LOCK= (empty)
# installs from the ranges in pyproject.toml alone.
LOCK=${STACKLENS_LOCK-requirements.lock}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "installing $TORCH_SPEC" >&2
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
fi
"$VENV/bin/python" -m pip install -q ${LOCK:+-c "$LOCK"} -e ".[model,dev]"
echo "environment ready in $VENV" >&2
