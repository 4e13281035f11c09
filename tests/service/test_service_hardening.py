"""The membership service's edges (issue 13, item 17): the token guards the schema and the
documentation pages too, bodies JSON cannot carry back are a 422, paging is checked up front."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.integration

Serve = Callable[..., str]
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_token_guards_the_schema_and_the_docs(serve: Serve, path: str) -> None:
    url = serve(token="s3cret")
    r = httpx.get(f"{url}{path}")
    assert r.status_code == 401, r.text
    assert "bearer token" in r.json()["detail"]
    ok = httpx.get(f"{url}{path}", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert httpx.get(f"{url}/healthz").status_code == 200  # the one open endpoint


def test_without_a_token_the_schema_and_docs_are_open(serve: Serve) -> None:
    url = serve()
    schema = httpx.get(f"{url}/openapi.json").json()
    assert {"/v1/check", "/v1/search", "/overlap", "/healthz"} <= set(schema["paths"])
    assert not {"/openapi.json", "/docs", "/redoc"} & set(schema["paths"])
    assert "/openapi.json" in httpx.get(f"{url}/docs").text
    assert "/openapi.json" in httpx.get(f"{url}/redoc").text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/check", '{"snippets": [{"text": NaN}]}'),
        ("/v1/check", '{"snippets": [{"text": "x = 1", "id": Infinity}]}'),
        ("/v1/check", '{"snippets": [{"text": "x = 1", "lang": -Infinity}]}'),
        ("/v1/check", '{"snippets": NaN}'),
        ("/overlap", '{"document": NaN}'),
        ("/v1/search", '{"query": "def f", "offset": NaN}'),
        ("/v1/search", '{"query": "def f", "size": 1e999}'),
        ("/v1/check", '{"snippets": [{"text": "\\ud800 = 1"}]}'),
        ("/v1/check", '{"snippets": [{"text": "x = 1", "id": "\\udcff"}]}'),
        ("/v1/check", '{"snippets": [{"text": "\\ud800", "extra": 1}]}'),
        ("/overlap", '{"document": "\\udfff"}'),
        ("/v1/search", '{"query": "ab\\ud800cd"}'),
    ],
)
def test_bodies_json_cannot_answer_with_are_422(serve: Serve, path: str, body: str) -> None:
    url = serve()
    r = httpx.post(f"{url}{path}", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail, detail


def test_lone_surrogates_are_named_in_the_message(serve: Serve) -> None:
    url = serve()
    r = httpx.post(f"{url}/overlap", content='{"document": "x\\ud83d"}', headers=JSON)
    assert r.status_code == 422
    assert "lone surrogate (\\ud83d) at character 1" in r.json()["detail"][0]["msg"]
    # A surrogate pair is one valid character, not an error.
    r = httpx.post(f"{url}/overlap", content='{"document": "x = \\"\\ud83d\\ude00\\"\\n"}', headers=JSON)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("offset", "size", "status"),
    [(10_000, 10, 422), (9_991, 10, 422), (9_999, 2, 422), (9_990, 10, 501), (9_999, 1, 501)],
)
def test_search_paging_is_checked_before_the_store(serve: Serve, offset: int, size: int, status: int) -> None:
    # 501 is the embedded store's answer to /v1/search: the request got past validation.
    url = serve()
    r = httpx.post(f"{url}/v1/search", json={"query": "def decode", "offset": offset, "size": size})
    assert r.status_code == status, r.text
    if status == 422:
        assert "10,000" in r.text or "less than 10000" in r.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", ""])
def test_a_body_that_is_not_json_nor_utf8_is_a_422(serve: Serve, content_type: str) -> None:
    # Not JSON: validated as bytes, and the 422 echoes them (which made a 500 while encoding).
    url = serve()
    r = httpx.post(f"{url}/v1/check", content=b"\x80\xff{", headers={"content-type": content_type})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["input"] == "\\x80\\xff{"
