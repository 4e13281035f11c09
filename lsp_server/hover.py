"""Hover on a highlighted range: where the code was found, under which licence, how strongly, in
how many corpus files, what the policy decided, and the side-by-side evidence of the top match."""

from __future__ import annotations

from lsprotocol import types

from membership import Match
from membership.policy import Decision

from .documents import path_hint
from .evidence import Shown, evidence_of, render_evidence
from .highlights import Highlight, lines_of
from .policy import source_key
from .state import StacklensServer

MAX_SOURCES = 5


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "\\`*_[]<>|" else c for c in text)


def found_in(m: Match) -> str:
    return "found in 1 file" if m.occurrences == 1 else f"found in {m.occurrences:,} files"


def source_line(m: Match, decision: Decision | None = None) -> str:
    name = _escape(source_key(m))
    link = f"[{name}]({m.source.url})" if m.source.url else f"`{source_key(m)}`"
    licence = _escape(m.source.license or "licence unknown")
    line = (
        f"- {link} {lines_of(m)} — **{licence}** — score {m.score:.2f} ({m.kind}, {m.matched_chars} chars)"
        f" — {found_in(m)}"
    )
    if decision is not None:
        line += f"\n  policy: **{decision.verdict}** — {_escape(decision.reason)}"
    return line


def render(
    highlights: list[Highlight],
    decisions: dict[int, Decision] | None = None,
    evidence: dict[int, Shown] | None = None,
) -> str:
    """The hover's Markdown; ``decisions`` by ``id(match)``, ``evidence`` by highlight id."""
    decisions, evidence = decisions or {}, evidence or {}
    parts = ["**stacklens: found in the training corpus**", ""]
    for h in highlights:
        parts.extend(source_line(m, decisions.get(id(m))) for m in h.matches[:MAX_SOURCES])
        if len(h.matches) > MAX_SOURCES:
            parts.append(f"- … and {len(h.matches) - MAX_SOURCES} more")
        if h.blocked_license:
            parts.append("")
            parts.append("⚠ the licence policy blocks this source (copyleft)")
        if h.id in evidence:
            parts += ["", render_evidence(evidence[h.id])]
    return "\n".join(parts)


def register(ls: StacklensServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: StacklensServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        snap = ls.snapshot(uri)
        if snap is None:
            return None
        doc = snap[0]
        offset = doc.offset_at(params.position)
        found = ls.highlights.at(uri, offset)
        if not found:
            return None
        file = path_hint(uri)
        decisions = {id(m): ls.policy.decide(m, file) for h in found for m in h.matches[:MAX_SOURCES]}
        evidence: dict[int, Shown] = {}
        for h in found[:2]:  # the source text and alignment of each highlight's top match
            shown = await evidence_of(ls, doc, h, file)
            if shown is not None:
                evidence[h.id] = shown
        lo, hi = min(h.start for h in found), max(h.end for h in found)
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=render(found, decisions, evidence)
            ),
            range=doc.range_of(lo, hi),
        )
