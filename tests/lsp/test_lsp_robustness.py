"""Failure paths and transports: dead backends, the membership service by URL, a clean stdout,
prompt exit, TCP."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import CORPUS_FILE, REPO, server_command
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HANG_LIMIT_S = 60  # only catches hangs; a healthy server answers in well under a second


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def membership_url(lsp_index: Path) -> Iterator[str]:
    from membership.service import create_app, running, store_opener

    with running(create_app(store_opener(str(lsp_index), None, None))) as url:
        yield url


def open_doc(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )


async def until(predicate: Any, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not predicate():
        await asyncio.sleep(0.05)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=server_command()), scope="module")
async def dead(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    """A server whose model backend and membership service are both down."""
    port = closed_port()
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path_factory.mktemp("dead").as_uri(),
            initialization_options={
                "debounceMs": 0,
                "completion": {
                    "backend": "openai",
                    "url": f"http://127.0.0.1:{port}",
                    "model": "m",
                    "retries": 0,
                },
                "membership": {"url": f"http://127.0.0.1:{port}", "backgroundDebounceMs": 0},
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_dead_backend_and_index_give_empty_results_and_one_message(dead: LanguageClient):
    uri = "file:///nowhere/dead.py"
    open_doc(dead, uri, "def f(x):\n")
    for _ in range(3):
        result = await dead.text_document_inline_completion_async(
            T.InlineCompletionParams(
                text_document=T.TextDocumentIdentifier(uri=uri),
                position=T.Position(line=1, character=0),
                context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
            )
        )
        assert result is not None and not getattr(result, "items", result)
    await until(lambda: any("membership" in m.message for m in dead.messages), timeout=15)
    errors = [m for m in dead.messages if m.type == T.MessageType.Error]
    completion_errors = [m for m in errors if "membership" not in m.message]
    assert len(completion_errors) == 1, [m.message for m in errors]
    assert len([m for m in errors if "membership" in m.message]) == 1
    status = await dead.workspace_execute_command_async(T.ExecuteCommandParams(command="stacklens.status"))
    assert status["membership"].startswith("membership service")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=server_command()), scope="module")
async def remote(lsp_client: LanguageClient, membership_url: str, tmp_path_factory):
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path_factory.mktemp("remote").as_uri(),
            initialization_options={"membership": {"url": membership_url, "backgroundDebounceMs": 0}},
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_membership_service_by_url(remote: LanguageClient):
    uri = "file:///remote/copied.py"
    open_doc(remote, uri, CORPUS_FILE)
    await until(lambda: bool(remote.diagnostics.get(uri)))
    assert f"{REPO}/interval_tree.py" in remote.diagnostics[uri][0].message


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def read_frames(data: bytes) -> list[dict[str, Any]]:
    """Parse a whole stdout capture; anything but JSON-RPC frames fails the parse."""
    out = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"not a JSON-RPC frame: {data[:200]!r}"
        length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out


SESSION: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"processId": None, "rootUri": None, "capabilities": {}}},
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
    {"jsonrpc": "2.0", "method": "exit", "params": None},
]  # fmt: skip

# The server with a print and a raw write to fd 1 injected after start-up.
NOISY = """
import os, sys
import lsp_server.state as st
orig = st.StacklensServer.flush_messages
def noisy(self):
    print("STRAY PRINT")
    os.write(1, b"STRAY FD WRITE\\n")
    orig(self)
st.StacklensServer.flush_messages = noisy
from lsp_server.cli import main
sys.exit(main(["--stdio"]))  # how llm-vscode starts its server binary
"""


def test_stdout_carries_only_json_rpc_and_exit_is_prompt() -> None:
    # stdin stays open after `exit` (as eglot keeps it): the server must leave on its own.
    proc = subprocess.Popen(
        [sys.executable, "-c", NOISY], cwd=ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(b"".join(frame(m) for m in SESSION))
    proc.stdin.flush()
    code = proc.wait(timeout=HANG_LIMIT_S)
    out, err = proc.communicate()
    assert code == 0
    frames = read_frames(out)
    assert [f.get("id") for f in frames if "id" in f] == [1, 2]
    caps = frames[0]["result"]["capabilities"]
    assert "inlineCompletionProvider" in caps
    assert caps["textDocumentSync"]["change"] == 2  # incremental
    assert b"STRAY PRINT" in err and b"STRAY FD WRITE" in err


def test_tcp_transport() -> None:
    port = closed_port()
    proc = subprocess.Popen(
        [*server_command(), "--tcp", "--port", str(port)], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        sock = None
        for _ in range(HANG_LIMIT_S * 10):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_LIMIT_S)
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert sock is not None, "the server never listened"
        with sock:
            sock.sendall(frame(SESSION[0]))
            data = b""
            while b"capabilities" not in data or not data.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
            assert read_frames(data)[0]["id"] == 1
            sock.sendall(b"".join(frame(m) for m in SESSION[1:]))
            assert proc.wait(timeout=HANG_LIMIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
