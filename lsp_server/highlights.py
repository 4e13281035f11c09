"""Match highlights per document, kept in place across edits, and the diagnostics that show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lsprotocol import types

from membership import Match

from .config import Severity
from .documents import DocumentText
from .policy import source_key

Origin = Literal["accepted", "scan"]
DIAGNOSTIC_CODE = "corpus-match"
SEVERITIES: dict[Severity, types.DiagnosticSeverity] = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}


@dataclass
class Highlight:
    """Matches over document offsets ``[start, end)``; ``text`` relocates it after edits."""

    start: int
    end: int
    text: str
    matches: list[Match]
    origin: Origin
    blocked_license: bool = False
    id: int = field(default=0)


def lines_of(m: Match) -> str:
    a, b = m.source_span.start_line, m.source_span.end_line
    return f"line {a}" if a == b else f"lines {a}-{b}"


def message_for(h: Highlight) -> str:
    top = h.matches[0]
    licence = top.source.license or "licence unknown"
    more = f" (+{len(h.matches) - 1} more)" if len(h.matches) > 1 else ""
    return f"found in the training corpus: {source_key(top)} {lines_of(top)} ({licence}){more}"


class HighlightStore:
    """Per-URI highlights. Scan results replace earlier scan results; accepted ones accumulate."""

    def __init__(self) -> None:
        self._by_uri: dict[str, list[Highlight]] = {}
        self._next_id = 1

    def get(self, uri: str) -> list[Highlight]:
        return self._by_uri.get(uri, [])

    def _new(self, h: Highlight) -> Highlight:
        h.id = self._next_id
        self._next_id += 1
        return h

    def add(self, uri: str, h: Highlight) -> Highlight:
        self._by_uri.setdefault(uri, []).append(self._new(h))
        return h

    def set_scan(self, uri: str, found: list[Highlight]) -> None:
        kept = [h for h in self.get(uri) if h.origin != "scan"]
        self._by_uri[uri] = kept + [self._new(h) for h in found]

    def clear(self, uri: str) -> None:
        self._by_uri.pop(uri, None)

    def remove(self, uri: str, hid: int) -> None:
        self._by_uri[uri] = [h for h in self.get(uri) if h.id != hid]

    def relocate(self, uri: str, text: str) -> bool:
        """Follow edits: a highlight whose text moved is found again nearby, one whose text was
        edited is dropped (a later scan re-finds what is still copied). True if any changed."""
        changed = False
        kept: list[Highlight] = []
        for h in self.get(uri):
            if text[h.start : h.end] == h.text:
                kept.append(h)
                continue
            changed = True
            before = text.rfind(h.text, 0, h.start + len(h.text))
            after = text.find(h.text, h.start)
            candidates = [p for p in (before, after) if p >= 0]
            if h.text and candidates:
                pos = min(candidates, key=lambda p: abs(p - h.start))
                h.start, h.end = pos, pos + len(h.text)
                kept.append(h)
        if changed:
            self._by_uri[uri] = kept
        return changed

    def at(self, uri: str, start: int, end: int | None = None) -> list[Highlight]:
        """Highlights touching ``[start, end]`` (a position when ``end`` is None)."""
        stop = start if end is None else end
        return [h for h in self.visible(uri) if h.start <= stop and start <= h.end]

    def visible(self, uri: str) -> list[Highlight]:
        """What is shown: a scan region that repeats an accepted highlight is not shown twice."""
        hs = self.get(uri)
        accepted = [h for h in hs if h.origin == "accepted"]
        out = list(accepted)
        for h in hs:
            if h.origin == "scan" and not any(a.start < h.end and h.start < a.end for a in accepted):
                out.append(h)
        return sorted(out, key=lambda h: (h.start, h.end))


def match_data(matches: list[Match]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in matches]


def diagnostics(
    store: HighlightStore,
    uri: str,
    doc: DocumentText,
    severity: Severity = "warning",
    blocked_severity: Severity = "error",
) -> list[types.Diagnostic]:
    """``data.blocked`` says whether the licence policy blocks the source, because clients that
    ask for one severity for every match can no longer tell that from the severity."""
    out: list[types.Diagnostic] = []
    for h in store.visible(uri):
        top = h.matches[0]
        href = top.source.url if top.source.url and "://" in top.source.url else None
        out.append(
            types.Diagnostic(
                range=doc.range_of(h.start, h.end),
                message=message_for(h),
                severity=SEVERITIES[blocked_severity if h.blocked_license else severity],
                code=DIAGNOSTIC_CODE,
                code_description=types.CodeDescription(href=href) if href else None,
                source="stacklens",
                data={
                    "id": h.id,
                    "origin": h.origin,
                    "blocked": h.blocked_license,
                    "matches": match_data(h.matches),
                },
            )
        )
    return out
