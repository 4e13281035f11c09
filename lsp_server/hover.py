"""Hover on a highlighted range: where the code was found, under which licence, how strongly."""

from __future__ import annotations

from lsprotocol import types

from membership import Match

from .highlights import Highlight, lines_of
from .policy import source_key
from .state import StacklensServer

MAX_SOURCES = 5


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>|" else c for c in text)


def source_line(m: Match) -> str:
    name = _escape(source_key(m))
    link = f"[{name}]({m.source.url})" if m.source.url else f"`{source_key(m)}`"
    licence = _escape(m.source.license or "licence unknown")
    return f"- {link} {lines_of(m)} — **{licence}** — score {m.score:.2f} ({m.kind}, {m.matched_chars} chars)"


def render(highlights: list[Highlight]) -> str:
    parts = ["**stacklens: found in the training corpus**", ""]
    for h in highlights:
        parts.extend(source_line(m) for m in h.matches[:MAX_SOURCES])
        if len(h.matches) > MAX_SOURCES:
            parts.append(f"- … and {len(h.matches) - MAX_SOURCES} more")
        if h.blocked_license:
            parts.append("")
            parts.append("⚠ the licence policy blocks this source (copyleft)")
    return "\n".join(parts)


def register(ls: StacklensServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: StacklensServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        snap = ls.snapshot(uri)
        if snap is None:
            return None
        doc = snap[0]
        offset = doc.offset_at(params.position)
        found = ls.highlights.at(uri, offset)
        if not found:
            return None
        lo, hi = min(h.start for h in found), max(h.end for h in found)
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=render(found)),
            range=doc.range_of(lo, hi),
        )
