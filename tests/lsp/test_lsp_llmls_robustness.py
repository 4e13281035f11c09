"""llm-ls clients and completion backends at their edges (issue 13 items 2, 3, 4, 9), raw
JSON-RPC over the real process, against real backends: our `stacklens serve` with a tiny model,
a port where nothing listens, and one that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import RING_FILE
from raw_lsp import HANG_LIMIT_S, RawServer, notification, request

from tests.completion.completion_helpers import free_port

pytestmark = pytest.mark.integration
URI = "file:///work/ring.py"
STARCODER_FIM = {
    "enabled": True,
    "prefix": "<fim_prefix>",
    "middle": "<fim_middle>",
    "suffix": "<fim_suffix>",
}


@contextmanager
def hanging(port: int) -> Iterator[None]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        yield


@contextmanager
def model_server(model: Path, port: int) -> Iterator[str]:
    """`stacklens serve`'s app with the tiny model, on ``port``, in a thread."""
    import uvicorn

    from completion.serve import ServerConfig, create_app

    config = uvicorn.Config(
        create_app(ServerConfig(str(model))), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + HANG_LIMIT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the model server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def open_ring(s: RawServer) -> None:
    doc = {"uri": URI, "languageId": "python", "version": 1, "text": RING_FILE[:120]}
    s.message(notification("textDocument/didOpen", {"textDocument": doc}))


def llm_ls_params(url: str, backend: str = "openai") -> dict[str, Any]:
    """What llm-vscode 0.2.2 sends (its defaults, with a backend and url set)."""
    return {
        "textDocument": {"uri": URI},
        "position": {"line": 2, "character": 0},
        "backend": backend,
        "url": url,
        "model": "tiny",
        "fim": STARCODER_FIM,
        "tokensToClear": ["<|endoftext|>"],
        "requestBody": {"parameters": {"max_new_tokens": 8, "temperature": 0.2, "top_p": 0.95}},
        "contextWindow": 1024,
        "tlsSkipVerifyInsecure": False,
        "ide": "vscode",
    }


def messages(s: RawServer) -> list[str]:
    return [str(m["params"]["message"]) for m in s.notices("window/showMessage")]


def test_cancelled_llm_ls_requests_answer_canceled_as_llm_ls_does() -> None:
    """llm-vscode shows a popup for every cancelled request whose message is not `Canceled`."""
    port = free_port()
    s = RawServer()
    try:
        with hanging(port):
            s.initialize(
                # A template: the standard request must reach the hanging backend (without one
                # the engine answers at once that it cannot tell the model's FIM template).
                {
                    "debounceMs": 0,
                    "completion": {
                        "backend": "tgi",
                        "url": f"http://127.0.0.1:{port}",
                        "template": "starcoder",
                    },
                }
            )
            open_ring(s)
            params = llm_ls_params(f"http://127.0.0.1:{port}", backend="tgi")
            s.message(request(1, "llm-ls/getCompletions", params))
            s.status("in-flight")  # id 1 has reached the backend, which never answers
            s.message(notification("$/cancelRequest", {"id": 1}))
            assert s.expect(1)["error"] == {"code": -32800, "message": "Canceled"}
            # A newer request for the same document cancels the older one, as typing does.
            s.message(request(2, "llm-ls/getCompletions", params))
            s.status("in-flight-2")
            s.message(request(3, "llm-ls/getCompletions", params))
            assert s.expect(2)["error"] == {"code": -32800, "message": "Canceled"}
            s.message(notification("$/cancelRequest", {"id": 3}))
            assert s.expect(3)["error"] == {"code": -32800, "message": "Canceled"}
            # The standard request keeps LSP's code (its message is pygls's).
            s.message(
                request(
                    4,
                    "textDocument/inlineCompletion",
                    {
                        "textDocument": {"uri": URI},
                        "position": {"line": 2, "character": 0},
                        "context": {"triggerKind": 1},
                    },
                )
            )
            s.status("in-flight-4")
            s.message(notification("$/cancelRequest", {"id": 4}))
            assert s.expect(4)["error"]["code"] == -32800
    finally:
        s.close()


def test_missing_index_warning_tells_llm_ls_users_how_to_set_it() -> None:
    s = RawServer()
    try:
        s.initialize()
        open_ring(s)
        reply = s.call(1, "llm-ls/getCompletions", llm_ls_params(f"http://127.0.0.1:{free_port()}"))
        assert reply["result"]["completions"] == []
        warnings = [m for m in messages(s) if "no membership index" in m]
        assert len(warnings) == 1, messages(s)
        assert "STACKLENS_INDEX" in warnings[0] and "stacklens.membership" not in warnings[0]
    finally:
        s.close()


def test_server_side_timeout_applies_to_llm_ls_requests(tiny_model: Path) -> None:
    """STACKLENS_CONFIG's completion.timeoutS reaches the engine an llm-ls request describes,
    and the message says where to raise it."""
    config = {"completion": {"timeoutS": 0.001, "retries": 0}}
    s = RawServer(env={"STACKLENS_CONFIG": json.dumps(config), "STACKLENS_POLICY": "off"})
    try:
        with model_server(tiny_model, free_port()) as url:
            s.initialize()
            open_ring(s)
            reply = s.call(1, "llm-ls/getCompletions", llm_ls_params(url))
            assert reply["result"]["completions"] == []
            timeouts = [m for m in messages(s) if "in time" in m]
            assert len(timeouts) == 1, messages(s)
            assert "STACKLENS_CONFIG" in timeouts[0] and "timeoutS" in timeouts[0]
    finally:
        s.close()


@pytest.mark.parametrize("backend_state", ["down", "hanging"])
def test_engine_recovers_when_the_backend_comes_up(tiny_model: Path, backend_state: str) -> None:
    port = free_port()
    options = {
        "debounceMs": 0,
        "completion": {
            "backend": "stacklens",
            "url": f"http://127.0.0.1:{port}",
            "timeoutS": 1,
            "retries": 0,
        },
    }
    inline = {
        "textDocument": {"uri": URI},
        "position": {"line": 2, "character": 0},
        "context": {"triggerKind": 1},
    }
    s = RawServer()
    try:
        if backend_state == "hanging":
            with hanging(port):
                s.initialize(options)
                open_ring(s)
                assert s.call(1, "textDocument/inlineCompletion", inline)["result"]["items"] == []
        else:
            s.initialize(options)
            open_ring(s)
            assert s.call(1, "textDocument/inlineCompletion", inline)["result"]["items"] == []
        assert s.status()["completion"]["configured"]["state"] == "failed"
        with model_server(tiny_model, port):
            deadline = time.monotonic() + HANG_LIMIT_S
            state = "failed"
            while state != "ready":
                assert time.monotonic() < deadline, f"the engine stayed {state}: {messages(s)}"
                s.call("again", "textDocument/inlineCompletion", inline)
                state = s.status()["completion"]["configured"]["state"]
                time.sleep(0.2)
    finally:
        s.close()
