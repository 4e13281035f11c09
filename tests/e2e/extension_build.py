"""Compiling the VS Code extension for the tests that run its own code under node."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "extension"


def compile_extension() -> None:
    """tsc over extension/ (into extension/out); skips locally, fails in CI, without node modules."""
    tsc = EXTENSION / "node_modules" / ".bin" / "tsc"
    if not shutil.which("node") or not tsc.exists():
        message = "extension node modules missing: run scripts/provision/vscode-e2e.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run([str(tsc), "-p", "."], cwd=EXTENSION, check=True, timeout=300)
