#!/usr/bin/env bash
# Regenerates requirements.lock: every package `make install` puts in the environment (the
# model and dev extras), pinned. pip-compile keeps a pin from the existing lock while it still
# satisfies pyproject.toml, so the lock moves only where a range in pyproject.toml changed
# (or with `make lock UPGRADE=--upgrade`).
set -euo pipefail
VENV=${VENV:-.venv}
"$VENV/bin/pip-compile" --quiet --extra model --extra dev --strip-extras --allow-unsafe \
  --no-emit-index-url --no-emit-find-links ${UPGRADE:-} -o requirements.lock pyproject.toml
# torch's CPU wheel carries a local label (2.13.0+cpu): pin the release, so a CUDA build of the
# same version (2.13.0+cu128) satisfies the lock on a GPU machine.
sed -i -E 's/^(torch==[^+ ]+)\+[A-Za-z0-9.]+/\1/' requirements.lock
