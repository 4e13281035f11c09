"""The stack search page's HTTP side: the page and its assets (open, self-contained, strict
headers) and ``POST /v1/evidence`` (the token, the limits, matches with aligned evidence)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import TOKEN

pytestmark = pytest.mark.integration


def test_page_and_assets_are_open_and_load_nothing_from_elsewhere(serve: Callable[..., str]) -> None:
    url = serve(token=TOKEN)
    page = httpx.get(f"{url}/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"  # ?q= carries the user's code
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    refs = [r for r in refs if r != "data:,"]  # the empty icon, so no /favicon.ico request
    assert refs and all(r.startswith("/static/") for r in refs), refs
    for ref in refs:
        asset = httpx.get(f"{url}{ref}", timeout=30)
        assert asset.status_code == 200
        assert not re.search(r"https?:|@import|url\(", asset.text), ref  # nothing fetched from elsewhere
    assert httpx.get(f"{url}/static/../service.py", timeout=30).status_code == 404
    assert httpx.get(f"{url}/static/secret.py", timeout=30).status_code == 404


def test_evidence_needs_the_token_and_aligns_the_copy(serve: Callable[..., str], query_text: str) -> None:
    url = serve(token=TOKEN)
    body = {"text": query_text, "path": "pasted.py"}
    assert httpx.post(f"{url}/v1/evidence", json=body, timeout=30).status_code == 401
    r = httpx.post(f"{url}/v1/evidence", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and results[0]["match"]["source"]["path"] == "json_decoder.py"
    assert results[0]["decision"] == {"verdict": "warn", "reason": "licence PSF-2.0: reported"}  # defaults
    ev = results[0]["evidence"]
    assert ev["origin"] in ("file", "index") and ev["reason"] is None
    same = [row for row in ev["rows"] if row["status"] == "same"]
    assert len(same) >= 30  # about 40 lines copied verbatim
    for row in same:
        assert row["query"]["text"].strip() == row["source"]["text"].strip()
        assert row["query"]["text"] in query_text


def test_evidence_limits_and_bad_bodies(serve: Callable[..., str]) -> None:
    url = serve(max_snippet_chars=1000)
    assert httpx.post(f"{url}/v1/evidence", json={"text": "x" * 1001}, timeout=30).status_code == 413
    assert httpx.post(f"{url}/v1/evidence", json={"code": "x"}, timeout=30).status_code == 422
    assert httpx.post(f"{url}/v1/evidence", content=b"\xff", timeout=30).status_code == 422
    empty = httpx.post(f"{url}/v1/evidence", json={"text": "  \n"}, timeout=30)
    assert empty.status_code == 200 and empty.json() == {"results": []}


def test_serve_refuses_a_bad_policy_file_before_listening(service_index: Path, tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text('{"licenseBlok": ["GPL*"]}')
    r = subprocess.run(
        [sys.executable, "-m", "membership", "serve", "--index", str(service_index), "--policy", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "licenseBlok" in r.stderr and "Traceback" not in r.stderr, r.stderr
