"""LSP's base protocol (``Content-Length`` framed JSON) read so that one malformed frame costs
that frame, not the session.

pygls's reader only knows ``Content-Length: N\\r\\n`` exactly: after a header it cannot read
(``abc``, a negative, a missing length) or a length that does not fit the body, it reads bodies
as headers and never answers again. This parser finds the next header instead:

- a header block it cannot read is skipped up to the next ``Content-Length:``;
- a body whose JSON ends early (declared too long) is cut where the JSON ends, or where the next
  frame's header starts: raw CR/LF cannot occur inside a JSON string and ``Content-Length``
  cannot occur outside one, so a header inside a body proves the length wrong;
- a body that is not JSON (declared too short, or garbage) is answered with a ParseError
  (``"id": null``, as JSON-RPC says) and skipped up to the next header.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
HEADER_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 8192
MAX_BODY_BYTES = 1 << 30
_LENGTH = re.compile(rb"content-length", re.IGNORECASE)
# The start of a frame's header inside what should be a body: impossible in valid JSON.
_HEADER_IN_BODY = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r\n(?:[A-Za-z0-9-]+:[^\r\n]*\r\n)*\r\n", re.I)
_NAME = re.compile(rb"[A-Za-z0-9-]+")
_BLANK = b" \t\r\n"
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Message:
    """A decoded JSON value, to hand to the protocol."""

    data: Any


@dataclass(frozen=True)
class ParseError:
    """A framed body that is not JSON: answered with a ParseError."""

    reason: str


Event = Message | ParseError


class FrameParser:
    """Bytes in, messages out; keeps the unread tail between ``feed`` calls."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan_from = 0  # how far into the buffer a pending body was searched for headers
        self.skipped = 0  # header blocks skipped (malformed), for tests and logs
        self.waiting = False  # a header was read and its body is still incomplete

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        return self._drain(stalled=False)

    def stalled(self) -> list[Event]:
        """The input paused in the middle of a body: if what arrived is already one whole JSON
        value, the declared length was too long and the client is waiting for the answer."""
        return self._drain(stalled=True)

    def _drain(self, stalled: bool) -> list[Event]:
        out: list[Event] = []
        while True:
            event, progressed = self._next(stalled)
            if event is not None:
                out.append(event)
            if not progressed:
                return out
            stalled = False  # a stall is about the body that was pending, not the next one

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._scan_from = 0

    def _skip(self, why: str) -> None:
        """Drop the current header and everything up to the next ``Content-Length``."""
        self.skipped += 1
        found = _LENGTH.search(self._buf, 1)
        keep = found.start() if found else max(1, len(self._buf) - len("content-length") + 1)
        log.warning("malformed LSP frame skipped (%s): %d bytes dropped", why, keep)
        self._consume(keep)

    def _next(self, stalled: bool) -> tuple[Event | None, bool]:
        """(event, whether the buffer changed); (None, False) means: wait for more input."""
        buf = self._buf
        blank = 0
        while blank < len(buf) and buf[blank] in _BLANK:
            blank += 1
        if blank:
            self._consume(blank)
        self.waiting = False
        if not buf:
            return None, False
        end = buf.find(HEADER_END, 0, MAX_HEADER_BYTES + 4)
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                self._skip("no end of header within 8 KB")
                return None, True
            return None, False
        length, why = _length(bytes(buf[:end]))
        if length is None:
            self._skip(why)
            return None, True
        start = end + len(HEADER_END)
        stop = start + length
        header = _HEADER_IN_BODY.search(buf, max(start, self._scan_from), min(stop, len(buf)))
        if header is not None:
            # The next frame starts inside this body: the length was wrong.
            return self._cut(start, header.start(), "the next header starts inside the body"), True
        if len(buf) < stop:
            # Searched again from a header's length back: one may straddle two reads.
            self._scan_from = max(start, len(buf) - MAX_HEADER_BYTES)
            if stalled and _ends_with_brace(buf, start):
                cut = self._cut(start, len(buf), "the body ended before its declared length", strict=True)
                if cut is not None:
                    return cut, True
            self.waiting = True
            return None, False
        return self._cut(start, stop, "", strict=False), True

    def _cut(self, start: int, stop: int, why: str, strict: bool = False) -> Event | None:
        """Decode ``buf[start:stop]`` as one JSON value and consume it. A shorter value followed
        by more bytes is a length that was too long: consume only the value. ``strict``: only
        consume when the bytes are exactly one value (else leave the buffer alone, None)."""
        body = bytes(self._buf[start:stop])
        try:
            text = body.decode("utf-8")
            lead = len(text) - len(text.lstrip())
            value, end = _DECODER.raw_decode(text, lead)
        except (UnicodeDecodeError, ValueError) as exc:
            if strict:
                return None
            self._skip(f"body is not JSON: {exc}")
            return ParseError(f"the message body is not JSON ({exc}); send Content-Length in bytes")
        rest = text[end:]
        if rest.strip(" \t\r\n"):
            if strict:
                return None
            used = len(text[:end].encode("utf-8"))
            log.warning("LSP frame length did not fit its body: %d bytes used, resynchronising", used)
            self._consume(start + used)
            return Message(value)
        if why:
            log.warning("LSP frame length did not fit its body (%s)", why)
        self._consume(stop)
        return Message(value)


def _ends_with_brace(buf: bytearray, start: int) -> bool:
    """Whether ``buf[start:]`` ends in ``}`` before trailing blanks (no copy of a large body)."""
    i = len(buf) - 1
    while i >= start and buf[i] in _BLANK:
        i -= 1
    return i >= start and buf[i] == ord("}")


def _length(header: bytes) -> tuple[int | None, str]:
    """The Content-Length of a header block, or (None, why not)."""
    length: int | None = None
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep or not _NAME.fullmatch(name.strip()):
            return None, f"not a header line: {line[:60]!r}"
        if name.strip().lower() == b"content-length":
            v = value.strip()
            if not v.isdigit():
                return None, f"Content-Length {v[:20]!r} is not a byte count"
            length = int(v)
    if length is None:
        return None, "no Content-Length header"
    if length > MAX_BODY_BYTES:
        return None, f"Content-Length {length} is over 1 GiB"
    return length, ""
