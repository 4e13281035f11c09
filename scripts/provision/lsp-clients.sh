#!/usr/bin/env bash
# Provision the real LSP clients the language-server tests drive headless: Debian's neovim (0.7)
# and emacs with eglot. Idempotent and quick when they are already installed; scripts/test.sh
# runs it when CI=true. Needs root (or sudo) for apt-get.
set -euo pipefail

log() { echo "provision/lsp-clients: $*" >&2; }

have_eglot() {
  command -v emacs >/dev/null 2>&1 &&
    emacs --batch --eval '(progn (package-initialize) (require (quote eglot)))' >/dev/null 2>&1
}

if command -v nvim >/dev/null 2>&1 && have_eglot; then
  log "already installed: $(nvim --version | head -1), $(emacs --version | head -1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { log "run as root (apt-get needs it)"; exit 2; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# elpa-eglot: Emacs 28 (Debian 12) has no built-in eglot.
packages=(neovim emacs-nox)
apt-cache show elpa-eglot >/dev/null 2>&1 || $SUDO apt-get update -qq
apt-cache show elpa-eglot >/dev/null 2>&1 && packages+=(elpa-eglot)
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
log "installed: $(nvim --version | head -1), $(emacs --version | head -1)"
have_eglot || { log "eglot is still not loadable in emacs"; exit 2; }
