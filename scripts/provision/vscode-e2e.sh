#!/usr/bin/env bash
# Provision the real VS Code end-to-end test (tests/e2e/test_vscode.py): Debian's chromium,
# code-server 4.100.3 (VS Code 1.100) from npm into a reusable cache dir, the extension's and the
# browser driver's node modules, and the extension's .vsix. Idempotent: each step is skipped when its
# result is already there. scripts/test.sh runs it when CI=true. Needs root (or sudo) for apt-get.
# Registries only (Debian apt, npm): nothing is downloaded from GitHub or a CDN.
#
# Env: STACKLENS_CODE_SERVER_DIR (default ~/.cache/stacklens/code-server), CS_VERSION (4.100.3),
#      SKIP_EXTENSION=1 (only chromium + code-server).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CS_VERSION="${CS_VERSION:-4.100.3}"   # newest code-server whose engines.node is 20
CS_DIR="${STACKLENS_CODE_SERVER_DIR:-$HOME/.cache/stacklens/code-server}"
log() { echo "provision/vscode-e2e: $*" >&2; }
t_start=$(date +%s)

# --- 1) Debian packages: chromium (the browser), and what code-server's native modules compile with.
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
for p in build-essential pkg-config libkrb5-dev python3 fonts-dejavu-core; do
  dpkg -s "$p" >/dev/null 2>&1 || packages+=("$p")
done
if [ ${#packages[@]} -gt 0 ]; then
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
    log "run as root (apt-get must install: ${packages[*]})"; exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when they cannot resolve what we need.
  apt-cache show "${packages[@]}" >/dev/null 2>&1 || $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
  log "installed: ${packages[*]}"
else
  log "debian packages present ($(chromium --version 2>/dev/null | head -1))"
fi

# --- 2) code-server from npm (see /work/shared/recipes/vscode-e2e/install-code-server.sh for the why).
cs_version() { node -p "require('$CS_DIR/node_modules/code-server/package.json').version" 2>/dev/null || true; }
if [ "$(cs_version)" = "$CS_VERSION" ] && [ -x "$CS_DIR/node_modules/.bin/code-server" ] \
   && [ -f "$CS_DIR/.complete" ]; then
  log "code-server $CS_VERSION present in $CS_DIR"
else
  mkdir -p "$CS_DIR"
  export TMPDIR="$CS_DIR/tmp"; mkdir -p "$TMPDIR"
  # @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache has the tarball: seed the cache
  # with the rg binary shipped inside the npm package @vscode/ripgrep-linux-x64.
  RGCACHE="$TMPDIR/vscode-ripgrep-cache-1.15.11"
  if [ ! -f "$RGCACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ]; then
    W="$(mktemp -d)"
    (cd "$W" && npm pack --silent @vscode/ripgrep-linux-x64@1.18.0 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$RGCACHE"
    tar czf "$RGCACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$W/package/bin" rg
    rm -rf "$W"
  fi
  cd "$CS_DIR"
  [ -f package.json ] || echo '{"name":"code-server-host","private":true}' > package.json
  # yes: node-pty's postinstall runs `npx node-gyp`; build_from_source: argon2/kerberos skip GitHub
  # prebuilt downloads; unsafe_perm: code-server's postinstall refuses root without it.
  npm_config_yes=true npm_config_build_from_source=true npm_config_unsafe_perm=true \
    npm install --no-audit --no-fund --foreground-scripts "code-server@$CS_VERSION" >&2
  [ "$(cs_version)" = "$CS_VERSION" ] || { log "code-server install failed"; exit 2; }
  touch "$CS_DIR/.complete"
  log "installed code-server $CS_VERSION into $CS_DIR"
  cd "$ROOT"
fi

[ "${SKIP_EXTENSION:-}" = "1" ] && { log "done in $(( $(date +%s) - t_start )) s"; exit 0; }

# --- 3) node modules of the extension and of the browser driver (npm ci only when the lockfile changed).
npm_ci() {  # dir
  local dir="$1" stamp="$1/node_modules/.stacklens-lock.sha"
  local sum; sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    log "node modules up to date in ${dir#"$ROOT"/}"
  else
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
    echo "$sum" > "$stamp"
  fi
}
npm_ci "$ROOT/extension"
npm_ci "$ROOT/tests/e2e/driver"

# --- 4) the .vsix (compile + package); the e2e test rebuilds it too, so this is a warm-up/check.
(cd "$ROOT/extension" && npm run --silent package 2>&1 | tail -1 >&2)
log "built $(ls "$ROOT"/extension/*.vsix | tail -1)"
log "done in $(( $(date +%s) - t_start )) s"
