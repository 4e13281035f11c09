#!/usr/bin/env bash
# The README's test command runs this (`make test`). In CI (CI=true) every prerequisite is
# provisioned by scripts/provision/*.sh first, so no test skips for a missing one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
if [ "${CI:-}" = "true" ] || [ "${STACKLENS_PROVISION:-}" = "1" ]; then
  for script in scripts/provision/*.sh; do
    [ -e "$script" ] || continue
    echo "== provisioning: $script" >&2
    bash "$script"
  done
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
for script in scripts/teardown/*.sh; do
  [ -e "$script" ] || continue
  bash "$script" || true
done
exit $rc
