#!/usr/bin/env bash
# After the tests: stop any Elasticsearch a killed test session left running. The session's
# fixture normally stops its own; this only catches leftovers, each by its own pid file.
set -euo pipefail
shopt -s nullglob
for run_dir in "${TMPDIR:-/tmp}"/stacklens-es-*; do
  [ -f "$run_dir/es.pid" ] || continue
  # Still owned by a live test session (another run in parallel): not a leftover.
  if [ -f "$run_dir/owner.pid" ] && kill -0 "$(cat "$run_dir/owner.pid")" 2>/dev/null; then
    continue
  fi
  bash "$(dirname "$0")/../elasticsearch.sh" stop "$run_dir" || true
  rm -rf "$run_dir"
done
