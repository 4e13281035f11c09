"""Editors nobody on the team wrote, headless: Debian's neovim 0.7 and emacs + eglot.

Each opens a file holding a snippet copied from the indexed corpus, must receive the match
diagnostic, and must get completions back (standard inline completion and llm-ls's request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import CORPUS_FILE, REPO, RING_FILE, require_editor, require_eglot

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = Path(__file__).parent / "clients"
ROOT = Path(__file__).resolve().parents[2]
# A hung editor must fail the test instead of the whole run; healthy runs take seconds.
HANG_LIMIT_S = 240


def document() -> tuple[str, int]:
    """Copied corpus code, then the start of a function the model has memorised; returns the
    text and the 0-based line of the cursor (the empty last line)."""
    text = CORPUS_FILE + "\n\n" + RING_FILE.splitlines(keepends=True)[0]
    return text, text.count("\n")


def results(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            item = json.loads(line[len("RESULT ") :])
            out[item["kind"]] = item["value"]
    return out


def env_for(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKLENS_")}
    env.update(PYBIN=sys.executable, PYTHONPATH=str(ROOT), **extra)
    return env


def check(found: dict[str, Any], stderr: str) -> None:
    assert found.get("diagnostics"), f"no match diagnostic reached the editor:\n{stderr[-3000:]}"
    messages = [d["message"] if isinstance(d, dict) else d for d in found["diagnostics"]]
    assert any(f"found in the training corpus: {REPO}/interval_tree.py" in m for m in messages)
    assert any(t.strip() for t in found["inline"]["items"]), found
    assert any(t.strip() for t in found["llm-ls"]["completions"]), found
    assert found.get("stopped") is True


def test_neovim(tmp_path: Path, lsp_index: Path, tiny_model: Path) -> None:
    nvim = require_editor("nvim")
    text, line = document()
    target = tmp_path / "copied.py"
    target.write_text(text, encoding="utf-8")
    options = {
        "membership": {"index": str(lsp_index), "backgroundDebounceMs": 0},
        "completion": {"backend": "transformers", "model": str(tiny_model), "device": "cpu"},
    }
    env = env_for({"STACKLENS_TEST_OPTIONS": json.dumps(options), "TEST_LINE": str(line)})
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(CLIENTS / "init.lua"), str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT_S,
    )
    check(results(proc.stdout), proc.stderr)


def test_emacs_eglot(tmp_path: Path, lsp_index: Path, tiny_model: Path) -> None:
    emacs = require_editor("emacs")
    require_eglot(emacs)
    text, line = document()
    target = tmp_path / "copied.py"
    target.write_text(text, encoding="utf-8")
    # eglot sends no initializationOptions here: the STACKLENS_* defaults configure the server.
    env = env_for(
        {
            "TEST_FILE": str(target),
            "TEST_LINE": str(line + 1),
            "STACKLENS_INDEX": str(lsp_index),
            "STACKLENS_BACKEND": "transformers",
            "STACKLENS_MODEL": str(tiny_model),
            "HOME": str(tmp_path),
        }
    )
    proc = subprocess.run(
        [emacs, "--batch", "-l", str(CLIENTS / "eglot.el")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT_S,
    )
    check(results(proc.stdout), proc.stderr + proc.stdout)
