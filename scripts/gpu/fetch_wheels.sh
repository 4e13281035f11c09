#!/usr/bin/env bash
# Wheels for the GPU machine (docs/gpu.md, "On the lent GPU machine"): it has Python 3.12, torch with CUDA and no
# network, but transformers 5 (we need <5), a huggingface_hub too new for that, and none of
# pydantic, pygls, datasketch, rapidfuzz or pytest-asyncio. Downloads, here, the versions this
# checkout's .venv runs, as cp312 manylinux wheels, into .whl/ (git-ignored; carried by the run).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "no .venv: run 'make install' first" >&2; exit 2; }

NAMES="transformers tokenizers huggingface-hub safetensors pydantic pydantic-core annotated-types
typing-inspection pytest-asyncio datasketch rapidfuzz pygls
lsprotocol cattrs pathspec"
pins=()
for name in $NAMES; do
    version=$("$PY" -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}')
    [ -n "$version" ] || { echo "$name is not installed in .venv" >&2; exit 2; }
    pins+=("$name==$version")
done

rm -rf .whl && mkdir -p .whl
platforms=()
for n in 17 24 27 28 31 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 -d .whl "${pins[@]}" 2> >(grep -v "is ignored" >&2)
echo "wheels in .whl/ ($(du -sh .whl | cut -f1)): ${pins[*]}"
