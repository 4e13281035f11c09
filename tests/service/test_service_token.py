"""The membership service's bearer-token check with tokens and headers outside ASCII."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from stacklens.auth import bearer_token_matches

pytestmark = pytest.mark.integration

TOKEN = "clé-tökén-ü"


def _check(url: str, authorization: bytes | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    # Raw bytes on the wire, deliberately: httpx sends them as they are.
    return httpx.post(f"{url}/v1/check", json={"snippets": []}, headers=headers, timeout=30)  # type: ignore[arg-type]


def test_non_ascii_token_matches_its_utf8_bytes(serve: Callable[..., str]) -> None:
    url = serve(token=TOKEN)
    ok = _check(url, f"Bearer {TOKEN}".encode())
    assert ok.status_code == 200 and ok.json() == {"results": []}
    for wrong in (None, b"Bearer cl\xe9-t\xf6k\xe9n-\xfc", "Bearer clé".encode(), b"Bearer \xff\xfe"):
        r = _check(url, wrong)
        assert r.status_code == 401, wrong
        assert "bearer token" in r.json()["detail"]


def test_non_ascii_header_against_ascii_token(serve: Callable[..., str]) -> None:
    url = serve(token="plain")
    assert _check(url, "Bearer plaîn".encode()).status_code == 401
    assert _check(url, b"Bearer plain").status_code == 200


def test_helper_on_strings_a_caller_built() -> None:
    assert bearer_token_matches(f"Bearer {TOKEN}".encode().decode("latin-1"), TOKEN)
    assert bearer_token_matches("bearer  plain ", "plain")
    assert bearer_token_matches("Bearer 令牌", "令牌")  # not Latin-1: compared as UTF-8
    assert not bearer_token_matches("Basic plain", "plain")
    assert not bearer_token_matches("Bearer", "plain")
