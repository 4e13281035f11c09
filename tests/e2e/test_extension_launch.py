"""The language server started exactly the way the VS Code extension starts it (the command line,
working directory and environment come from the extension's own extension/src/launch.ts), in a
workspace whose Python files shadow the server's dependencies: the server must still answer
`initialize`, and workspace code must not run. Also: the status the extension shows names the model
a model server reports, and the extension's defaults are the server's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.extension_build import EXTENSION, compile_extension

pytestmark = pytest.mark.integration

# Stdlib and dependency names a repository may well have a file called like.
SHADOWING = ("attr", "json", "typing", "logging", "numpy", "asyncio", "pydantic")
LAUNCH = """
const { serverLaunch } = require('./out/src/launch');
const { PROBE_ARGS } = require('./out/src/interpreter');
const input = JSON.parse(process.argv[1]);
console.log(JSON.stringify({ launch: serverLaunch(input), probe: PROBE_ARGS }));
"""


def _lsp_message(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_message(stream: Any) -> dict[str, Any]:
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if not length:
        raise EOFError("the server closed stdout")
    message: dict[str, Any] = json.loads(stream.read(length))
    return message


def _response(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    while True:
        msg = _read_message(proc.stdout)
        if msg.get("id") == request_id and "method" not in msg:
            return msg


@pytest.fixture
def shadowing_workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    marker = tmp_path / "workspace-code-ran"
    for name in SHADOWING:
        (ws / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write('{name} ')\n"
            f"raise RuntimeError('the workspace file {name}.py was imported by the server')\n",
            encoding="utf-8",
        )
    return ws


def test_server_started_like_the_extension_ignores_workspace_modules(
    shadowing_workspace: Path, tmp_path: Path
) -> None:
    compile_extension()
    storage = tmp_path / "globalStorage"
    storage.mkdir()
    # A shell with PYTHONPATH=. (or pointing at the repository) is common: it must not matter either.
    env = {**os.environ, "PYTHONPATH": str(shadowing_workspace)}
    spec = {
        "python": sys.executable,
        "logLevel": "debug",
        "extraArgs": [],
        "workspaceFolder": str(shadowing_workspace),
        "serverDir": str(storage),
        "env": env,
    }
    r = subprocess.run(
        ["node", "-e", LAUNCH, json.dumps(spec)],
        cwd=EXTENSION, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    out = json.loads(r.stdout)
    launch = out["launch"]
    assert Path(launch["cwd"]) != shadowing_workspace

    probe = subprocess.run(
        [launch["command"], *out["probe"]],
        cwd=launch["cwd"], env=launch["env"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-2000:]

    proc = subprocess.Popen(
        [launch["command"], *launch["args"], "--stdio"],
        cwd=launch["cwd"], env=launch["env"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    try:
        init = {
            "processId": os.getpid(),
            "rootUri": shadowing_workspace.as_uri(),
            "capabilities": {},
            "workspaceFolders": [{"uri": shadowing_workspace.as_uri(), "name": "workspace"}],
        }
        proc.stdin.write(_lsp_message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}))
        proc.stdin.flush()
        try:
            reply = _response(proc, 1)
        except EOFError:
            proc.wait(timeout=30)
            assert proc.stderr is not None
            pytest.fail(f"the server died: {proc.stderr.read().decode()[-3000:]}")
        assert "capabilities" in reply["result"], reply
        proc.stdin.write(_lsp_message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        proc.stdin.write(_lsp_message({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.flush()
        _response(proc, 2)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not (tmp_path / "workspace-code-ran").exists()


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "model": "tiny-starcoder", "template": "starcoder"}).encode()
        self.send_response(200 if self.path.rstrip("/").endswith("healthz") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.asyncio
async def test_status_names_the_model_a_model_server_reports() -> None:
    """With `stacklens.completion.backend: stacklens` and no model set, the model server names its
    model in /healthz; stacklens.status (what the status bar shows) must carry that name."""
    from lsp_server.engines import Engines

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    engines = Engines(notify=lambda _m: None)
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        await engines.configure({"backend": "stacklens", "url": url, "model": ""})
        assert engines.configured is not None
        await engines.configured.ready()
        status = engines.status()["configured"]
        assert status["state"] == "ready", status
        assert status["model"] == "tiny-starcoder"
        assert status["engine"] == f"stacklens {url}"
    finally:
        await engines.configure(None)
        httpd.shutdown()
        httpd.server_close()


def test_extension_defaults_are_the_servers() -> None:
    """The extension sends its settings' defaults to the server: they must be the server's own."""
    from completion.settings import CompletionSettings

    props = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))["contributes"][
        "configuration"
    ]["properties"]
    fields = CompletionSettings.model_fields
    for key, field in (
        ("maxNewTokens", "max_new_tokens"),
        ("contextWindow", "context_window"),
        ("temperature", "temperature"),
    ):
        assert props[f"stacklens.completion.{key}"]["default"] == fields[field].default, key
