"""A bounded fuzz layer against the real `stacklens serve` on loopback: malformed HTTP (framing,
headers, bodies) from a fixed table, and JSON bodies of every shape from hypothesis. A client's
mistake is never a 5xx, nothing is logged as a server error, and the server still answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from completion_helpers import serve_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_http import error_message, request_bytes, send

from completion.serve import ServerConfig, create_app

pytestmark = pytest.mark.integration

TOKEN = "fuzz-tökén"
GOOD = f"Bearer {TOKEN}".encode()
JSON = b"application/json"
LIMIT = 20_000


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzzed(starcoder_dir: Path) -> Iterator[tuple[str, _Errors]]:
    errors = _Errors()
    # uvicorn's loggers do not propagate to the root logger: listen to them directly.
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "completion")]
    app = create_app(ServerConfig(str(starcoder_dir), token=TOKEN, max_body_bytes=LIMIT))
    with serve_app(app) as url:
        for logger in loggers:
            logger.addHandler(errors)
        try:
            yield url, errors
        finally:
            for logger in loggers:
                logger.removeHandler(errors)
            # After the whole batch the server still answers a valid request.
            ok = httpx.post(
                f"{url}/v1/completions",
                json={"prompt": "def f(", "max_tokens": 3},
                headers={b"Authorization": GOOD},
                timeout=60,
            )
            assert ok.status_code == 200 and isinstance(ok.json()["choices"][0]["text"], str)


_AUTH_JSON = {"Authorization": GOOD, "Content-Type": JSON}


def _json(path: str, body: bytes, **headers: bytes) -> bytes:
    return request_bytes(path, body, {**_AUTH_JSON, **headers})


def _raw(head: bytes, body: bytes = b"") -> bytes:
    return b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + head + b"\r\n" + body


OK_BODY = b'{"prompt": "x", "max_tokens": 2}'
BAD_BODIES = [
    b"{nope",
    b"",
    b"null",
    b"[]",
    b'"prompt"',
    b"123",
    b'{"prompt": "\xff\xfe\xfd"}',  # not UTF-8
    b"\xff\xfe" + '{"prompt": "x"}'.encode("utf-16-le"),
    b'{"prompt": "x", "temperature": NaN}',
    b'{"prompt": "x", "temperature": Infinity}',
    b'{"prompt": "x", "top_p": -Infinity}',
    b'{"prompt": "x", "max_tokens": 1e400}',
    b'{"prompt": "x", "max_tokens": 1' + b"0" * 5000 + b"}",  # over Python's int digit limit
    b'{"prompt": "x", "max_tokens": -1}',
    b'{"prompt": "x", "max_tokens": 0}',
    b'{"prompt": "x", "max_tokens": 4.5}',
    b'{"prompt": "x", "max_tokens": "5"}',
    b'{"prompt": "x", "n": 9}',
    b'{"prompt": 5}',
    b'{"prompt": null}',
    b'{"prompt": {"a": 1}}',
    b'{"prompt": ["a", 1]}',
    b'{"prompt": []}',
    b'{"prompt": "a\\ud800b"}',  # a lone surrogate
    b'{"prompt": "x", "suffix": "\\udfff"}',
    b'{"prompt": "x", "stop": 5}',
    b'{"prompt": "x", "stop": [""], "max_tokens": 2}',
    b'{"prompt": "x", "stop": ' + json.dumps(list("abcdefghijklmnopq")).encode() + b"}",  # 17 stops
    b'{"prompt": "x", "stream": "yes"}',
    b'{"prompt": "x", "input_extra": [{"filename": 1}]}',
    b'{"prompt": "x", "input_extra": "util.py"}',
    b'{"prompt": "\\u0000\\u0000", "max_tokens": 2}',
    b'{"prompt": "x", "prompt": 7}',
    b"[" * 15_000 + b"]" * 15_000,  # nesting deeper than the JSON parser recurses
    b'{"prompt": "' + b"x" * 19_000 + b'", "max_tokens": 2048}',
]


def _cases() -> list[tuple[str, bytes, bool]]:
    """(name, raw request, half-close after sending: for requests the server would wait on)."""
    out = [(f"body {i}", _json("/v1/completions", b), False) for i, b in enumerate(BAD_BODIES)]
    out += [(f"tgi body {i}", _json("/generate", b), False) for i, b in enumerate(BAD_BODIES[:12])]
    out += [
        ("tgi params", _json("/generate", b'{"inputs": "x", "parameters": [1]}'), False),
        ("tgi stream", _json("/generate_stream", b'{"inputs": "x", "parameters": {"top_p": 1}}'), False),
        ("text/plain", request_bytes("/v1/completions", OK_BODY, {"Authorization": GOOD}), False),
        (
            "charset",
            _json("/v1/completions", OK_BODY, **{"Content-Type": JSON + b"; charset=latin-1"}),
            False,
        ),
        ("form", _json("/v1/completions", b"prompt=x", **{"Content-Type": b"multipart/form-data"}), False),
        ("length abc", _raw(b"Content-Length: abc\r\n", OK_BODY), False),
        ("length -1", _raw(b"Content-Length: -1\r\n", OK_BODY), False),
        ("length 1e3", _raw(b"Content-Length: 1e3\r\n", OK_BODY), False),
        ("two lengths", _raw(b"Content-Length: 5\r\nContent-Length: 33\r\n", OK_BODY), False),
        ("length short", _raw(b"Content-Length: 10\r\nContent-Type: application/json\r\n", OK_BODY), False),
        ("length long", _raw(b"Content-Length: 500\r\nContent-Type: application/json\r\n", OK_BODY), True),
        ("length huge", _raw(b"Content-Length: 99999999999999999999999\r\n", OK_BODY), False),
        ("chunked+length", _raw(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"), False),
        ("bad chunk", _raw(b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"), False),
        ("cut chunk", _raw(b"Transfer-Encoding: chunked\r\n", b"ffff\r\nabc"), True),
        ("chunked over", request_bytes("/v1/completions", b"", _AUTH_JSON, [b"x" * 4096] * 6), False),
        ("no auth", request_bytes("/v1/completions", OK_BODY, {"Content-Type": JSON}), False),
        ("bare bearer", _json("/v1/completions", OK_BODY, Authorization=b"Bearer"), False),
        ("basic", _json("/v1/completions", OK_BODY, Authorization=b"Basic Zm9vOmJhcg=="), False),
        ("latin-1", _json("/v1/completions", OK_BODY, Authorization=b"Bearer fuzz-t\xf6k\xe9n"), False),
        ("bytes", _json("/v1/completions", OK_BODY, Authorization=b"Bearer \xff\xfe\x80"), False),
        ("long token", _json("/v1/completions", OK_BODY, Authorization=b"Bearer " + b"a" * 8000), False),
        ("nul", _json("/v1/completions", OK_BODY, Authorization=b"Bearer a\x00b"), False),
        ("two auths", _raw(b"Authorization: Bearer no\r\nAuthorization: " + GOOD + b"\r\n", OK_BODY), False),
        ("huge header", _json("/v1/completions", OK_BODY, **{"X-Big": b"a" * 100_000}), False),
        ("no colon", _raw(b"Garbage header line\r\n", OK_BODY), False),
        ("expect", _json("/v1/completions", OK_BODY, Expect=b"100-continue"), False),
        ("method", b"FROB /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        ("get", b"GET /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        ("path", _json("/v1/%ff%00/../completions", OK_BODY), False),
        ("http/0.9", b"GET /healthz\r\n\r\n", False),
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), False),
    ]
    return out


@pytest.mark.parametrize(("name", "data", "half_close"), _cases(), ids=[c[0] for c in _cases()])
def test_malformed_http_is_never_5xx(
    fuzzed: tuple[str, _Errors], name: str, data: bytes, half_close: bool
) -> None:
    url, errors = fuzzed
    errors.records.clear()
    status, body = send(url, data, half_close=half_close)
    assert status is None or status < 500, (status, body[:300])
    if status is not None and status >= 400 and body.startswith(b"{"):
        assert json.loads(body)  # our error bodies are JSON
    assert not errors.records, [r.getMessage() for r in errors.records]


# --- JSON bodies of every shape --------------------------------------------------------------

_INTS = st.one_of(st.integers(-3, 3), st.sampled_from([2048, 2049, 2**31, 2**63, -(2**63), 10**30]))
_TEXT = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, st.floats(), _TEXT)
_ANY = st.recursive(
    _SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(_TEXT, c, max_size=3), max_leaves=6
)
# Each field gets a value of its own type half the time (so requests get past validation, to the
# model, with empty, huge or odd values) and anything at all otherwise.
_PLAUSIBLE = {
    "prompt": _TEXT | st.lists(_TEXT, max_size=2),
    "suffix": _TEXT,
    "max_tokens": _INTS,
    "temperature": st.floats(),
    "top_p": st.floats(),
    "n": _INTS,
    "stop": _TEXT | st.lists(_TEXT, max_size=3),
    "stream": st.booleans(),
    "input_extra": st.lists(st.fixed_dictionaries({"filename": _TEXT, "text": _TEXT}), max_size=2),
    "filename": _TEXT,
    "model": _TEXT,
}
_PLAUSIBLE_TGI = {
    "max_new_tokens": _INTS,
    "temperature": st.floats(),
    "top_p": st.floats(),
    "do_sample": st.booleans(),
    "stop": st.lists(_TEXT, max_size=3),
    "return_full_text": st.booleans(),
    "details": st.booleans(),
}
_OPENAI = {k: v | _ANY for k, v in _PLAUSIBLE.items()}
_TGI = {
    "inputs": _TEXT | _ANY,
    "parameters": _ANY | st.fixed_dictionaries({}, optional={k: v | _ANY for k, v in _PLAUSIBLE_TGI.items()}),
}
_BODIES = st.one_of(
    st.tuples(st.just("/v1/completions"), st.fixed_dictionaries({}, optional=_OPENAI)),
    st.tuples(
        st.sampled_from(["/generate", "/generate_stream"]),
        st.fixed_dictionaries({}, optional=_TGI),
    ),
)


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same bounded batch every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=_BODIES)
def test_json_bodies_of_any_shape_are_never_5xx(fuzzed: tuple[str, _Errors], case: tuple[str, Any]) -> None:
    url, errors = fuzzed
    errors.records.clear()
    path, body = case
    data = json.dumps(body, allow_nan=True).encode()  # NaN and Infinity too, as Python sends them
    resp = httpx.post(
        f"{url}{path}",
        content=data,
        headers={b"Authorization": GOOD, b"Content-Type": JSON},
        timeout=120,
    )
    assert resp.status_code < 500, (body, resp.text[:300])
    if resp.status_code >= 400:
        assert error_message(resp.text)
    assert not errors.records, [r.getMessage() for r in errors.records]
