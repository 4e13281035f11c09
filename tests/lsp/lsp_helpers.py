"""Constants and helpers shared by the language-server tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

PROVISION = "scripts/provision/lsp-clients.sh"

# Distinctive code: long enough (> min_chars) that a copy is an unambiguous match.
CORPUS_FILE = textwrap.dedent(
    '''\
    class IntervalNode:
        """A node of an augmented interval tree keyed by interval start."""

        def __init__(self, low, high, payload=None):
            self.low = low
            self.high = high
            self.payload = payload
            self.max_high = high
            self.left = None
            self.right = None


    def interval_insert(root, low, high, payload=None):
        if root is None:
            return IntervalNode(low, high, payload)
        if low < root.low:
            root.left = interval_insert(root.left, low, high, payload)
        else:
            root.right = interval_insert(root.right, low, high, payload)
        root.max_high = max(root.max_high, high)
        return root


    def interval_overlaps(root, low, high, found):
        while root is not None:
            if root.low <= high and low <= root.high:
                found.append(root.payload)
            if root.left is not None and root.left.max_high >= low:
                interval_overlaps(root.left, low, high, found)
            root = root.right
        return found
    '''
)
# A short file the tiny model memorises, so its completions are found in the index.
RING_FILE = textwrap.dedent(
    """\
    def ring_buffer_push(ring, head, capacity, value):
        ring[head % capacity] = value
        head = (head + 1) % capacity
        return head


    def ring_buffer_items(ring, head, capacity, size):
        start = (head - size) % capacity
        return [ring[(start + i) % capacity] for i in range(size)]
    """
)
REPO = "acme/trees"
RING_REPO = "acme/ring"
SOURCE_URL = "https://example.com/acme/trees/interval_tree.py"


def server_command() -> list[str]:
    """The real console-script dispatch: ``stacklens lsp``."""
    return [sys.executable, "-m", "lsp_server.cli", "lsp", "--log-level", "debug"]


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_editor(binary: str) -> str:
    """The editor's path; skip locally (fail in CI) when it is not installed."""
    path = shutil.which(binary)
    if path:
        return path
    _missing(f"{binary} is not installed: run {PROVISION} (apt-get install -y neovim emacs-nox)")
    raise AssertionError("unreachable")


def require_eglot(emacs: str) -> None:
    """Emacs 28 has no built-in eglot: Debian's elpa-eglot provides it."""
    probe = subprocess.run(
        [emacs, "--batch", "--eval", "(progn (package-initialize) (require 'eglot))"],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        _missing(f"emacs cannot load eglot: run {PROVISION} (apt-get install -y elpa-eglot)")
