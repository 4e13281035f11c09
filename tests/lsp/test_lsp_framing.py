"""The JSON-RPC layer against hostile input: malformed frames (issue 13 item 6), params that do
not validate (7), requests after shutdown (8). Parser units, then the real process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from raw_lsp import RawServer, frame, notification, request

from lsp_server.framing import FrameParser, Message, ParseError

BODY = json.dumps(request(7, "workspace/executeCommand", {"command": "stacklens.status"})).encode()
GOOD = frame(request(8, "shutdown"))

# What a broken client sends; each is followed by a good frame that must still be read.
MALFORMED = {
    "length not a number": b"Content-Length: abc\r\n\r\n" + BODY,
    "negative length": b"Content-Length: -5\r\n\r\n" + BODY,
    "no length": b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + BODY,
    "length too short": b"Content-Length: %d\r\n\r\n" % (len(BODY) - 9) + BODY,
    "length too long": b"Content-Length: %d\r\n\r\n" % (len(BODY) + 40) + BODY,
    "body not JSON": b"Content-Length: 9\r\n\r\nnot json!",
    "junk line": b"hello there\r\n",
}


def messages(events: list[Message | ParseError]) -> list[object]:
    return [e.data for e in events if isinstance(e, Message)]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_parser_reads_the_next_frame_after_a_malformed_one(case: str) -> None:
    parser = FrameParser()
    got = messages(parser.feed(MALFORMED[case] + GOOD))
    assert got[-1] == request(8, "shutdown")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_parser_reads_the_next_frame_byte_by_byte(case: str) -> None:
    parser = FrameParser()
    events = []
    for i in range(len(MALFORMED[case] + GOOD)):
        events += parser.feed((MALFORMED[case] + GOOD)[i : i + 1])
    assert messages(events)[-1] == request(8, "shutdown")


def test_parser_length_too_long_with_nothing_after_is_read_when_the_input_pauses() -> None:
    parser = FrameParser()
    assert parser.feed(MALFORMED["length too long"]) == []
    assert parser.waiting
    assert messages(parser.stalled()) == [json.loads(BODY)]


def test_parser_a_large_body_in_pieces_is_not_cut_by_a_pause() -> None:
    parser = FrameParser()
    whole = frame({"jsonrpc": "2.0", "method": "x", "params": {"text": "}" * 100_000}})
    assert parser.feed(whole[:50_000]) == [] and parser.stalled() == []
    assert len(messages(parser.feed(whole[50_000:]))) == 1


def test_parser_answers_a_body_that_is_not_json() -> None:
    events = FrameParser().feed(MALFORMED["body not JSON"] + GOOD)
    assert isinstance(events[0], ParseError)


# -- the real process ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RawServer]:
    s = RawServer()
    s.initialize()
    yield s
    s.close()


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_server_answers_again_after_a_malformed_frame(server: RawServer, case: str) -> None:
    server.send(MALFORMED[case])
    assert "result" in server.call(2, "workspace/executeCommand", {"command": "stacklens.status"})


@pytest.mark.integration
def test_server_answers_a_request_whose_length_was_too_long(server: RawServer) -> None:
    server.send(MALFORMED["length too long"])  # nothing follows: the client waits for id 7
    assert "result" in server.expect(7)


INVALID = {
    "character -1": {"line": 0, "character": -1},
    "line 2^31": {"line": 2**31, "character": 0},
    "position a string": "zero",
}


@pytest.mark.integration
@pytest.mark.parametrize(
    "method", ["textDocument/hover", "textDocument/inlineCompletion", "llm-ls/getCompletions"]
)
@pytest.mark.parametrize("case", sorted(INVALID))
def test_params_that_do_not_validate_get_invalid_params(server: RawServer, method: str, case: str) -> None:
    params = {
        "textDocument": {"uri": "file:///x.py"},
        "position": INVALID[case],
        "context": {"triggerKind": 1},
    }
    reply = server.call(3, method, params)
    assert reply["error"]["code"] == -32602, reply
    assert "result" in server.call(4, "workspace/executeCommand", {"command": "stacklens.status"})


@pytest.mark.integration
def test_requests_after_shutdown_get_invalid_request_and_exit_still_works() -> None:
    s = RawServer()
    s.initialize()
    assert s.call(1, "shutdown")["result"] is None
    for rid, method in enumerate(["textDocument/hover", "llm-ls/getCompletions", "shutdown"], 2):
        reply = s.call(
            rid, method, {"textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 0}}
        )
        assert reply["error"]["code"] == -32600, reply
    s.message(notification("exit"))
    assert s.proc.wait(timeout=60) == 0


def test_parser_finds_a_long_header_that_straddles_two_reads_of_a_long_body() -> None:
    """A length far too long, then a frame whose header (with Content-Type) is split."""
    parser = FrameParser()
    good = json.dumps(request(8, "shutdown")).encode()
    head = b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n" % len(good)
    first = b"Content-Length: 100000\r\n\r\n" + BODY + b" " * 5000
    assert parser.feed(first + head) == []  # the header's end has not arrived yet
    assert messages(parser.feed(b"\r\n" + good)) == [json.loads(BODY), request(8, "shutdown")]
