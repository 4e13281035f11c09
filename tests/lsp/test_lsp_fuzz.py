"""A bounded fuzz layer against one real server process: hypothesis-generated malformed frames,
then params of every shape for the methods a client can call. After each example a probe
request must be answered (the server resynchronised and is alive), and every request the fuzz
sends must get a response. Fixed example counts; a per-example deadline only catches hangs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from raw_lsp import HANG_LIMIT_S, RawServer, frame, notification, request

from lsp_server.framing import FrameParser, Message

pytestmark = pytest.mark.integration
IDS = itertools.count(1000)
FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=HANG_LIMIT_S),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
URI = "file:///fuzz/a.py"

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
POSITION = st.fixed_dictionaries(
    {"line": JSON | st.integers(-2, 2**32), "character": JSON | st.integers(-2, 2**32)}
)
TEXT_POSITION = st.fixed_dictionaries(
    {"textDocument": st.just({"uri": URI}) | JSON, "position": POSITION | JSON}
)
# Params shaped like the real ones, with any part replaced by any JSON.
PARAMS = st.one_of(
    JSON,
    TEXT_POSITION,
    TEXT_POSITION.map(lambda p: {**p, "context": {"triggerKind": 1}}),
    TEXT_POSITION.map(lambda p: {**p, "backend": "tgi", "url": "http://127.0.0.1:9", "requestBody": p}),
    st.fixed_dictionaries(
        {
            "command": st.sampled_from(["stacklens.status", "stacklens.searchSelection", "x"]),
            "arguments": JSON,
        }
    ),
    st.fixed_dictionaries({"requestId": JSON, "acceptedCompletion": JSON}),
)
REQUESTS = [
    "textDocument/hover",
    "textDocument/inlineCompletion",
    "textDocument/codeAction",
    "workspace/executeCommand",
    "llm-ls/getCompletions",
    "llm-ls/acceptCompletion",
    "llm-ls/rejectCompletion",
    "stacklens/unknown",
]
NOTIFICATIONS = [
    "textDocument/didChange",
    "textDocument/didSave",
    "workspace/didChangeConfiguration",
    "$/cancelRequest",
]

BODY = st.one_of(
    st.binary(max_size=80),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda m, p: json.dumps(request(7, m, p)).encode(), st.sampled_from(REQUESTS), JSON),
)
LENGTH = st.one_of(
    st.integers(-5, 200).map(str),
    st.sampled_from(["abc", "", " ", "1e3", "0x10", "99999999999", "-0"]),
)
HEADER = st.one_of(
    st.builds(lambda n: f"Content-Length: {n}\r\n".encode(), LENGTH),
    st.sampled_from(
        [b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n", b"content-length:12\r\n", b""]
    ),
    st.binary(max_size=30),
)
FRAME = st.one_of(
    st.builds(lambda hs, body: b"".join(hs) + b"\r\n" + body, st.lists(HEADER, max_size=3), BODY),
    st.builds(
        lambda body, delta: b"Content-Length: %d\r\n\r\n" % max(0, len(body) + delta) + body,
        BODY,
        st.integers(-10, 10),
    ),
    st.binary(max_size=60),
)


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    s = RawServer()
    s.initialize({"debounceMs": 0})
    s.message(
        notification(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": URI,
                    "languageId": "python",
                    "version": 1,
                    "text": "def f(x):\n    return x\n",
                }
            },
        )
    )
    yield s
    assert s.proc.poll() is None, "the server died during the fuzz:\n" + s.stderr()[-3000:]
    assert s.close() == 0


def probe(s: RawServer) -> None:
    rid = next(IDS)
    reply = s.call(
        rid, "workspace/executeCommand", {"command": "stacklens.status", "arguments": [{"quiet": True}]}
    )
    assert "result" in reply, reply


@FUZZ
@given(st.lists(FRAME, min_size=1, max_size=3))
def test_fuzz_malformed_frames_never_stop_the_server(server: RawServer, frames: list[bytes]) -> None:
    server.send(b"".join(frames))
    probe(server)


@FUZZ
@given(st.sampled_from(REQUESTS), PARAMS)
def test_fuzz_every_request_gets_a_response(server: RawServer, method: str, params: Any) -> None:
    rid = next(IDS)
    server.message({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    reply = server.expect(rid)
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert reply["error"]["code"] != -32603, reply  # a crash in a handler, not a bad request


@FUZZ
@given(st.sampled_from(NOTIFICATIONS), PARAMS)
def test_fuzz_notifications_never_stop_the_server(server: RawServer, method: str, params: Any) -> None:
    server.message(notification(method, params))
    probe(server)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(FRAME, max_size=4), st.integers(1, 64))
def test_fuzz_parser_always_reads_a_good_frame_after_junk(junk: list[bytes], chunk: int) -> None:
    """Pure: whatever came before, a good frame is read (fed in chunks of any size)."""
    parser = FrameParser()
    data = b"".join(junk) + frame(request("probe", "shutdown"))
    got: list[Any] = []
    for i in range(0, len(data), chunk):
        got += [e.data for e in parser.feed(data[i : i + chunk]) if isinstance(e, Message)]
    if not got or got[-1] != request("probe", "shutdown"):
        got += [e.data for e in parser.stalled() if isinstance(e, Message)]
    assert got and got[-1] == request("probe", "shutdown")
