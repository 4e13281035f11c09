"""A raw JSON-RPC client for the real `stacklens lsp` process: bytes in, parsed frames out, so
tests can send what no well-behaved client library would (broken headers, bad params)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from lsp_helpers import server_command

ROOT = Path(__file__).resolve().parents[2]
# Only catches hangs (a healthy server answers in well under a second); lowered to check
# quickly that a test fails against a server without the fix.
HANG_LIMIT_S = float(os.environ.get("STACKLENS_TEST_HANG_S", "60"))


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def request(rid: int | str, method: str, params: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def _reader(stream: IO[bytes], out: queue.Queue[dict[str, Any] | None]) -> None:
    """Parse the server's stdout strictly: anything but a frame fails the test (via None)."""
    buf = b""
    while True:
        data = stream.read1(1 << 16)  # type: ignore[attr-defined]
        if not data:
            out.put(None)
            return
        buf += data
        while True:
            header, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                break
            length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(rest) < length:
                break
            out.put(json.loads(rest[:length]))
            buf = rest[length:]


class RawServer:
    """The server as a child process; ``expect`` waits for a response by id (never forever)."""

    def __init__(self, env: dict[str, str] | None = None, root_uri: str | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STACKLENS_")}
        self.proc = subprocess.Popen(
            server_command(), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**environ, **(env or {})},
        )  # fmt: skip
        self.frames: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        assert self.proc.stdout is not None
        threading.Thread(target=_reader, args=(self.proc.stdout, self.frames), daemon=True).start()
        # Drained all along: a full stderr pipe would block the server's logging.
        self.log: list[bytes] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self.root_uri = root_uri

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def stderr(self) -> str:
        return b"".join(self.log).decode("utf-8", "replace")

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def message(self, msg: Any) -> None:
        self.send(frame(msg))

    def _next(self) -> dict[str, Any]:
        item = self.frames.get(timeout=HANG_LIMIT_S)
        assert item is not None, "the server closed its output"
        self.seen.append(item)
        return item

    def expect(self, rid: int | str | None) -> dict[str, Any]:
        """The response to request ``rid`` (None: a response with ``"id": null``)."""
        for earlier in self.seen:
            if "method" not in earlier and "id" in earlier and earlier["id"] == rid:
                self.seen.remove(earlier)
                return earlier
        while True:
            item = self._next()
            if "method" not in item and "id" in item and item["id"] == rid:
                self.seen.remove(item)
                return item
            if "method" in item and "id" in item:  # a server->client request: answer null
                self.message({"jsonrpc": "2.0", "id": item["id"], "result": None})

    def call(self, rid: int | str, method: str, params: Any = None) -> dict[str, Any]:
        self.message(request(rid, method, params))
        return self.expect(rid)

    def notices(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("method") == method]

    def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        params = {"processId": None, "rootUri": self.root_uri, "capabilities": {}}
        if options is not None:
            params["initializationOptions"] = options
        result = self.call("init", "initialize", params)
        self.message(notification("initialized", {}))
        return result

    def status(self, rid: int | str = "status") -> dict[str, Any]:
        params = {"command": "stacklens.status", "arguments": [{"quiet": True}]}  # no message each time
        reply = self.call(rid, "workspace/executeCommand", params)
        return dict(reply["result"])

    def close(self) -> int:
        """Shut down and exit politely; the exit status (killed if it would not exit)."""
        if self.proc.poll() is None:
            try:
                self.message(request("bye", "shutdown"))
                self.message(notification("exit"))
            except (BrokenPipeError, OSError):
                pass
        try:
            return self.proc.wait(timeout=HANG_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
