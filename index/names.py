"""Names from file systems and datasets: stored losslessly, printed safely.

A POSIX file name is bytes. Python hands undecodable bytes over as lone surrogates
(``surrogateescape``), which no UTF-8 file, JSON document or HTTP answer can carry. The index
stores such a name as text with ``\\xNN`` for each undecodable byte (what every reader shows)
and the exact bytes in hex beside it (what a program needs to open the file again).
"""

from __future__ import annotations

import os
import re

# What a terminal would act on rather than show: C0 and C1 controls, DEL, the line and paragraph
# separators, and the bidirectional overrides and isolates of "Trojan Source".
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_text(name: str) -> bool:
    """Whether ``name`` is valid Unicode (no lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escape_surrogate(ch: str) -> str:
    cp = ord(ch)
    return f"\\x{cp - 0xDC00:02x}" if 0xDC80 <= cp <= 0xDCFF else f"\\u{cp:04x}"


def display_name(name: str) -> str:
    """``name`` as valid Unicode: each undecodable byte (a ``surrogateescape`` surrogate) as
    ``\\xNN``, any other lone surrogate as ``\\uXXXX``; valid names are returned unchanged."""
    if is_text(name):
        return name
    return "".join(_escape_surrogate(c) if "\ud800" <= c <= "\udfff" else c for c in name)


def name_bytes_hex(name: str) -> str | None:
    """The exact bytes of a file-system name in hex, when they are not valid UTF-8; else None."""
    if is_text(name):
        return None
    return os.fsencode(name).hex()


def printable(text: str) -> str:
    """``text`` safe to write to a terminal: control characters, separators, bidi overrides and
    lone surrogates as visible escapes (``\\n``, ``\\x1b``, ``\\x07``, ``\\u202e``, ``\\xff``)."""

    def escape(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in _SHORT:
            return _SHORT[ch]
        if "\ud800" <= ch <= "\udfff":
            return _escape_surrogate(ch)
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _UNPRINTABLE.sub(escape, text)
