"""The membership service over loopback: contracts, limits, token, error mapping, the client."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from index.store import EmbeddedIndex
from membership import Matcher
from membership.client import RemoteChecker
from stacklens.errors import BackendError, ConfigError
from tests.service.conftest import PASTED_HEADER

pytestmark = pytest.mark.integration

Serve = Callable[..., str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_returns_the_matchers_matches_per_snippet(
    serve: Serve, service_index: Path, query_text: str
) -> None:
    url = serve()
    body = {
        "snippets": [
            {"id": "a", "text": query_text, "path": "x.py"},
            {"id": 7, "text": "x = 1\n"},
            {"text": "  "},
        ]
    }
    r = httpx.post(f"{url}/v1/check", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [res["id"] for res in results] == ["a", 7, None]
    with EmbeddedIndex(service_index) as idx:
        expected = [m.model_dump() for m in Matcher(idx).check(query_text, path="x.py")]
    assert expected, "the verbatim query must match its source"
    assert results[0]["matches"] == expected
    assert expected[0]["source"]["path"] == "json_decoder.py"
    assert expected[0]["source"]["license"] == "PSF-2.0"
    assert results[1]["matches"] == [] and results[2]["matches"] == []


def test_overlap_spans_cover_the_pasted_text(serve: Serve, service_index: Path, query_text: str) -> None:
    url = serve()
    r = httpx.post(f"{url}/overlap", json={"document": query_text})
    assert r.status_code == 200, r.text
    spans = r.json()["spans"]
    with EmbeddedIndex(service_index) as idx:
        matches = Matcher(idx).check(query_text)
    expected = sorted((m.query_span.start_char, m.query_span.end_char) for m in matches)
    assert expected, "the pasted text must be found"
    merged: list[list[int]] = []
    for start, end in expected:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    assert spans == merged
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), "sorted, merged"
    assert spans[0][0] >= len(PASTED_HEADER), "the header line is not the corpus's"
    assert httpx.post(f"{url}/overlap", json={"document": "print('hi')\n"}).json() == {"spans": []}


def test_overlap_spans_count_characters_on_lines_with_astral_characters_and_crlf(
    serve: Serve, query_text: str
) -> None:
    """Spans are code-point offsets into the document as sent (llm-vscode's /overlap): an emoji
    or a mathematical letter is one character, and CRLF is two."""
    url = serve()
    header = "# \U0001f600 \U0001d538\U0001d539 pasted \U0001f600\n"  # astral: two UTF-16 units each
    plain_header = "# x yy pasted x\n"
    assert len(header) == len(plain_header) and len(header.encode("utf-16-le")) > 2 * len(header)
    plain = plain_header + query_text
    crlf = header.replace("\n", "\r\n") + query_text.replace("\n", "\r\n")
    spans_plain = httpx.post(f"{url}/overlap", json={"document": plain}).json()["spans"]
    spans_crlf = httpx.post(f"{url}/overlap", json={"document": crlf}).json()["spans"]
    assert spans_plain, "the pasted text must be found"

    def shifted(i: int) -> int:  # the offset in crlf of offset i in plain: a CR before each LF
        return i + plain[:i].count("\n")

    assert spans_crlf == [[shifted(a), shifted(b)] for a, b in spans_plain]
    for (a, b), (c, d) in zip(spans_plain, spans_crlf, strict=True):
        assert crlf[c:d] == plain[a:b].replace("\n", "\r\n")


def test_healthz_and_openapi(serve: Serve) -> None:
    url = serve(token="t0ken")
    health = httpx.get(f"{url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert "documents" in health.json()["store"]
    schema = httpx.get(f"{url}/openapi.json", headers={"Authorization": "Bearer t0ken"}).json()
    assert {"/v1/check", "/v1/search", "/overlap", "/healthz"} <= set(schema["paths"])


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer"])
def test_token_is_required_when_set(serve: Serve, header: str | None) -> None:
    url = serve(token="right-token")
    headers = {"Authorization": header} if header else {}
    r = httpx.post(f"{url}/v1/check", json={"snippets": []}, headers=headers)
    assert r.status_code == 401
    assert "bearer token" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    ok = httpx.post(f"{url}/v1/check", json={"snippets": []}, headers={"Authorization": "Bearer right-token"})
    assert ok.status_code == 200 and ok.json() == {"results": []}


def test_limits_are_clear_4xx(serve: Serve, query_text: str) -> None:
    url = serve(max_body_bytes=50_000, max_snippets=3, max_snippet_chars=5_000)
    big = {"snippets": [{"text": "x" * 60_000}]}
    r = httpx.post(f"{url}/v1/check", json=big)
    assert r.status_code == 413 and "50,000-byte limit" in r.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the streamed size is counted
        for _ in range(20):
            yield b"x" * 5_000

    r = httpx.post(f"{url}/v1/check", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413

    r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": "a"}] * 4})
    assert r.status_code == 413 and "limit is 3" in r.json()["detail"]
    r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": "y" * 5_001}]})
    assert r.status_code == 413 and "snippet 0" in r.json()["detail"]
    r = httpx.post(f"{url}/overlap", json={"document": "y" * 5_001})
    assert r.status_code == 413
    r = httpx.post(f"{url}/v1/check", json={"snippets": "nope"})
    assert r.status_code == 422


def test_time_budget_is_a_408(serve: Serve, query_text: str) -> None:
    url = serve(max_request_seconds=1e-9)
    r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": query_text}]})
    assert r.status_code == 408
    assert "fewer or smaller snippets" in r.json()["detail"]


def test_search_needs_elasticsearch(serve: Serve) -> None:
    url = serve()
    r = httpx.post(f"{url}/v1/search", json={"query": "def decode"})
    assert r.status_code == 501
    assert "--es-url" in r.json()["detail"]


class _FailingStore:
    """A real index whose lookups fail as a dead remote store would."""

    def __init__(self, path: Path) -> None:
        self.inner = EmbeddedIndex(path)
        self.params = self.inner.params
        self.described = 0

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> Any:
        raise BackendError("the store went away (test)")

    lookup_bands = lookup_fingerprints

    def document(self, ref: int) -> dict[str, Any]:
        return self.inner.document(ref)

    def describe(self) -> str:
        self.described += 1
        if self.described > 1:  # the lifespan describes it once, at start-up
            raise BackendError("the store went away (test)")
        return "failing store"

    def close(self) -> None:
        self.inner.close()


def test_store_errors_map_to_their_status(serve: Serve, service_index: Path, query_text: str) -> None:
    url = serve(store=lambda: _FailingStore(service_index))
    r = httpx.post(f"{url}/v1/check", json={"snippets": [{"text": query_text}]})
    assert r.status_code == 502
    assert r.json() == {"detail": "the store went away (test)"}
    assert httpx.get(f"{url}/healthz").status_code == 503


def test_remote_checker_equals_local_matcher(serve: Serve, service_index: Path, query_text: str) -> None:
    url = serve(token="abc")
    with RemoteChecker(url, token="abc") as remote, EmbeddedIndex(service_index) as idx:
        assert remote.check(query_text) == Matcher(idx).check(query_text)
        assert remote.overlap(query_text)
        many = remote.check_many([{"text": query_text}, {"text": "pass\n"}])
        assert len(many) == 2 and many[0] and many[1] == []
    with RemoteChecker(url, token="nope") as bad, pytest.raises(ConfigError, match="401"):
        bad.check(query_text)
    with RemoteChecker(url, token="abc") as remote, pytest.raises(BackendError, match="501"):
        remote.search("decode")


def test_remote_checker_reports_a_dead_or_silent_service() -> None:
    with (
        RemoteChecker(f"http://127.0.0.1:{_free_port()}") as dead,
        pytest.raises(BackendError, match="cannot reach"),
    ):
        dead.check("x = 1\n")
    # A listener that accepts and never answers: the read timeout ends the call.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        slow = RemoteChecker(f"http://127.0.0.1:{port}", timeout=0.5)
        with slow, pytest.raises(BackendError, match="did not answer in time"):
            slow.check("x = 1\n")


def test_code_search_query_url(serve: Serve, query_text: str, tmp_path: Path) -> None:
    url = serve(token="cli-token")
    q = tmp_path / "q.py"
    q.write_text(query_text)
    cmd = [
        sys.executable,
        "-m",
        "membership",
        "query",
        "--url",
        url,
        "--token",
        "cli-token",
        "--json",
        str(q),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["matches"][0]["source"]["path"] == "json_decoder.py"
    cmd[cmd.index("cli-token")] = "wrong"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "401" in done.stderr
