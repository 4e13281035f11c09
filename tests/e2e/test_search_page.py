"""The stack search page in a real browser: `code-search serve`'s page (GET /) in Debian's
chromium driven by playwright-core (tests/e2e/driver/search_page.js). With a token: the wrong one
is refused with a message, the right one finds the pasted copy; the ranked source shows its
licence, score, commonness and the service's policy verdict; the side-by-side view aligns the
copy with the corpus lines and marks the renamed identifier; the page's address reopens the
match, in a new tab after asking for the token; nothing is requested from anywhere else.

Screenshots: artifacts/e2e/page-*.png. Set STACKLENS_E2E_UPDATE_DOCS_IMAGE=1 to refresh
docs/images/stack-search-page.png. Needs scripts/provision/vscode-e2e.sh (chromium and the
driver's node modules); skips locally when they are missing, fails with CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from index.builder import build
from index.config import BuildLimits
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from membership.policy import PolicySettings
from membership.service import create_app, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "e2e" / "driver"
ARTIFACTS = ROOT / "artifacts" / "e2e"
DOCS_IMAGE = ROOT / "docs" / "images" / "stack-search-page.png"
DECODER = Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py"
TOKEN = "page-token-5678"
DRIVER_TIMEOUT_S = 150
PROVISION = "scripts/provision/vscode-e2e.sh"


def _tools() -> dict[str, str]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    needed = {"chromium": Path(chromium), "playwright-core": DRIVER / "node_modules" / "playwright-core"}
    missing = [name for name, p in needed.items() if not p.exists()]
    if not shutil.which("node"):
        missing.append("node")
    if missing:
        message = f"browser test prerequisites missing ({', '.join(missing)}): run {PROVISION}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {"chromium": chromium}


def pasted() -> str:
    """JSONObject's first 49 lines, with `nextchar` renamed: a near copy."""
    lines = DECODER.read_text().splitlines(keepends=True)[135:184]
    return "# adapted from a chat answer\n" + re.sub(r"\bnextchar\b", "ch", "".join(lines))


def test_search_page_in_chromium(tmp_path: Path) -> None:
    tools = _tools()
    corpus = tmp_path / "corpus"
    (corpus / "Lib" / "json").mkdir(parents=True)
    shutil.copy(DECODER, corpus / "Lib" / "json" / "decoder.py")
    index = tmp_path / "idx"
    source = DirectorySource(corpus, BuildLimits(), repo="python/cpython", license="PSF-2.0")
    build(index, [source], progress=False)  # no URL template: the page is where a source is opened
    query = tmp_path / "query.py"
    query.write_text(pasted(), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # the page shows the service's policy: here PSF-2.0 is blocked (by default it only warns)
    policy = PolicySettings(license_block=["PSF-*"])
    app = create_app(lambda: EmbeddedIndex(index), token=TOKEN, policy=policy)
    with running(app) as base:
        env = {
            **os.environ,
            "BASE": base,
            "TOKEN": TOKEN,
            "QUERY_FILE": str(query),
            "EXPECT_SOURCE": "python/cpython/Lib/json/decoder.py",
            "EXPECT_LICENSE": "PSF-2.0",
            "EXPECT_POLICY": "policy: licence PSF-2.0 is blocked (PSF-* in licenseBlock)",
            "CHROMIUM": tools["chromium"],
            "ARTIFACTS": str(ARTIFACTS),
            "TIMEOUT_S": str(DRIVER_TIMEOUT_S),
        }
        if os.environ.get("STACKLENS_E2E_UPDATE_DOCS_IMAGE") == "1":
            env["DOCS_IMAGE"] = str(DOCS_IMAGE)
        r = subprocess.run(
            ["node", str(DRIVER / "search_page.js")], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=DRIVER_TIMEOUT_S + 30,
        )  # fmt: skip
    lines = r.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    failed = [s for s in summary.get("steps", []) if not s["ok"]]
    assert r.returncode == 0 and summary.get("ok"), (
        f"search page failed (screenshots in {ARTIFACTS}): {failed or summary.get('error')}\n"
        f"{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    )
    assert [s["name"] for s in summary["steps"]][-1] == "07-self-contained"
