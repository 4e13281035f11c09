"""Raw HTTP/1.1 over a socket, for requests httpx will not send (bad framing, odd headers)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def request_bytes(
    path: str, body: bytes, headers: dict[str, bytes] | None = None, chunks: list[bytes] | None = None
) -> bytes:
    """A POST with Connection: close; ``chunks`` sends the body chunked instead of ``body``."""
    head = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    head += [k.encode() + b": " + v for k, v in (headers or {}).items()]
    if chunks is None:
        if not any(k.lower() == "content-length" for k in headers or {}):
            head.append(b"Content-Length: %d" % len(body))
        payload = body
    else:
        head.append(b"Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


def send(url: str, data: bytes, *, half_close: bool = False, timeout: float = 60) -> tuple[int | None, bytes]:
    """Send ``data``; return the response's status (None when the server closed without one)
    and its body. ``half_close`` ends the sending side, for requests the server would wait on."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed early (e.g. 413): read what it sent
        received = b""
        while True:
            try:
                part = sock.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            received += part
    if not received.startswith(b"HTTP/1.1 "):
        return None, received
    head, _, rest = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), _dechunk(rest) if b"chunked" in head.lower() else rest


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def error_message(body: bytes | str) -> str:
    """The message of an error body in the wire format of the route that answered: OpenAI's
    ``{"error": {"message", "type"}}`` or, on /generate*, TGI's ``{"error": str, "error_type"}``."""
    data: Any = json.loads(body)
    if isinstance(data["error"], str):
        assert data["error_type"], data
        return data["error"]
    assert data["error"]["type"], data
    return str(data["error"]["message"])
