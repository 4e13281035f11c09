"""The extension's TypeScript unit tests (`npm test` in extension/: tsc, then node's test runner), run
from pytest so `make test` covers them. Offline; needs the node modules from
scripts/provision/vscode-e2e.sh (skipped locally without them, failing with CI=true)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXTENSION = Path(__file__).resolve().parents[2] / "extension"


def test_extension_unit_tests() -> None:
    if not shutil.which("npm") or not (EXTENSION / "node_modules" / ".bin" / "tsc").exists():
        message = "extension node modules missing: run scripts/provision/vscode-e2e.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    r = subprocess.run(
        ["npm", "test", "--silent"], cwd=EXTENSION, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"npm test failed:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    assert "# fail 0" in r.stdout
