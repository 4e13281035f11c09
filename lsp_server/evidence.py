"""Evidence in the editor: the side-by-side section of a highlight's hover, `stacklens.evidence`
(the texts and their alignment, for clients that draw it themselves: the VS Code extension opens
them in its diff editor) and `stacklens.showDiff` (a unified diff in a temporary file, opened
with `window/showDocument`, for every other client)."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from membership import Match
from membership.evidence import Evidence, Mark, Row, SourceText, align, line_slice, query_only

from .documents import DocumentText, path_hint
from .highlights import Highlight, lines_of
from .policy import source_key
from .state import StacklensServer

log = logging.getLogger(__name__)
EVIDENCE_COMMAND = "stacklens.evidence"
DIFF_COMMAND = "stacklens.showDiff"
MAX_ROWS = 14  # rows a hover shows; the diff view has them all
COLUMN = 46  # characters of each side a hover row shows
EVIDENCE_TIMEOUT_S = 2.0  # a hover never waits longer for the source text and the alignment


@dataclass(frozen=True)
class Shown:
    """A highlight's top match with both texts and their alignment."""

    match: Match
    query: str
    query_first: int
    source: SourceText
    source_fragment: str | None
    evidence: Evidence


def query_fragment(doc: DocumentText, h: Highlight, m: Match) -> tuple[str, int]:
    """The document's whole lines that the match covers, and the first one's number (1-based).
    A scan's match spans are document offsets; an accepted suggestion's count from the text it
    was checked with, so there the highlight stands for the match."""
    a, b = h.start, h.end
    span = m.query_span
    if h.origin == "scan" and h.start <= span.start_char < span.end_char <= h.end:
        a, b = span.start_char, span.end_char  # (once edits moved the highlight, it stands for it)
    first = doc.position_at(a).line
    last = doc.position_at(max(a, b - 1)).line
    end = int(doc.starts[last + 1]) if last + 1 < len(doc.starts) else len(doc.text)
    return doc.text[int(doc.starts[first]) : end].replace("\r\n", "\n"), first + 1


def _remote(ls: StacklensServer, query: str, first: int, m: Match, path: str | None) -> Shown:
    """The evidence from the membership service: it aligns, and its rows carry the source lines."""
    found = ls.gate.remote_evidence(query, m, None, path)
    if isinstance(found, str):
        ev = query_only(query, found, query_start_line=first)
        return Shown(m, query, first, SourceText(None, reason=found), None, ev)
    ev = Evidence(
        rows=Evidence.from_json(found.to_json(), first - 1).rows,
        renames=found.renames,
        origin=found.origin,
        reason=found.reason,
        truncated=found.truncated,
    )
    lines = [r.source_text for r in ev.rows if r.source_text is not None]
    fragment = "".join(line + "\n" for line in lines) if lines and not ev.reason else None
    source = SourceText(fragment, origin=ev.origin, reason=ev.reason)  # type: ignore[arg-type]
    return Shown(m, query, first, source, fragment, ev)


def _compute(ls: StacklensServer, doc: DocumentText, h: Highlight, m: Match, path: str | None) -> Shown:
    query, first = query_fragment(doc, h, m)
    if ls.gate.cfg.url:
        return _remote(ls, query, first, m, path)
    src = ls.gate.source_text(m)
    if src.text is None:
        ev = query_only(query, src.reason or "the source text is not available", query_start_line=first)
        return Shown(m, query, first, src, None, ev)
    fragment = line_slice(src.text, m.source_span.start_line, m.source_span.end_line)
    ev = align(query, fragment, query_start_line=first, source_start_line=m.source_span.start_line)
    return Shown(m, query, first, src, fragment, ev)


async def evidence_of(
    ls: StacklensServer, doc: DocumentText, h: Highlight, path: str | None = None
) -> Shown | None:
    """The top match's evidence, off the event loop; None when it takes too long or fails."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(
            loop.run_in_executor(None, _compute, ls, doc, h, h.matches[0], path), EVIDENCE_TIMEOUT_S
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # evidence is an extra: the hover still names the source
        log.info("no evidence for highlight %d: %s", h.id, exc)
        return None


def _underline(marks: tuple[Mark, ...], width: int) -> str:
    line = [" "] * width
    for mk in marks:
        for c in range(mk.start, min(mk.end, width)):
            line[c] = "~" if mk.kind == "renamed" else "^"
    return "".join(line)


def _cell(number: int | None, text: str | None, width: int) -> str:
    if number is None or text is None:
        return " " * (width + 6)
    text = text.expandtabs(4)
    shown = text if len(text) <= width else text[: width - 1] + "…"
    return f"{number:>5} {shown:<{width}}"


def side_by_side(rows: tuple[Row, ...], width: int = COLUMN, max_rows: int = MAX_ROWS) -> list[str]:
    """Rows as fixed-width text, the query on the left: ``~`` under renamed identifiers, ``^``
    under other differences."""
    out: list[str] = []
    blank = " " * (width + 6)
    for r in rows[:max_rows]:
        left, right = _cell(r.query_line, r.query_text, width), _cell(r.source_line, r.source_text, width)
        out.append(f"{left} │ {right}".rstrip())
        left = blank if r.query_line is None else " " * 6 + _underline(r.query_marks, width)
        right = "" if r.source_line is None else " " * 6 + _underline(r.source_marks, width)
        if left.strip() or right.strip():  # marks past a truncated line's end draw nothing
            out.append(f"{left} │ {right}".rstrip())
    if len(rows) > max_rows:
        out.append(f"… {len(rows) - max_rows} more lines (stacklens: compare with the source)")
    return out


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def render_evidence(shown: Shown) -> str:
    """The hover's evidence section (Markdown)."""
    m, ev = shown.match, shown.evidence
    parts = [f"**Side by side** — this file ↔ {_code(source_key(m))} {lines_of(m)}", ""]
    if ev.reason:
        parts.append(f"_Source text unavailable: {ev.reason}._")
        return "\n".join(parts)
    parts += ["```text", *side_by_side(ev.rows), "```"]
    if ev.renames:
        shown_renames = list(ev.renames.items())[:8]
        more = f" (+{len(ev.renames) - 8} more)" if len(ev.renames) > 8 else ""
        parts.append("renamed: " + ", ".join(f"{_code(a)} → {_code(x)}" for a, x in shown_renames) + more)
    count = {k: sum(r.status == k for r in ev.rows) for k in ("same", "renamed")}
    changed = len(ev.rows) - count["same"] - count["renamed"]
    origin = "kept in the index" if shown.source.origin == "index" else "read from the corpus file"
    parts.append(
        f"{count['same']} of {len(ev.rows)} lines identical, {count['renamed']} renamed only, "
        f"{changed} changed; source text {origin}"
    )
    return "\n".join(parts)


def unified_diff(shown: Shown) -> str:
    """The source fragment against the query's lines, as a unified diff."""
    m = shown.match
    q_last = shown.query_first + max(shown.query.count("\n") - (shown.query.endswith("\n")), 0)
    head = [
        f"# stacklens: {m.describe()}",
        f"# --- the source ({source_key(m)} {lines_of(m)})",
        f"# +++ this file (lines {shown.query_first}-{q_last})",
    ]
    if shown.evidence.renames:
        head.append("# renamed: " + ", ".join(f"{a} -> {x}" for a, x in shown.evidence.renames.items()))
    if shown.source_fragment is None:
        return "\n".join([*head, f"# the source text is unavailable: {shown.evidence.reason}", ""])
    diff = difflib.unified_diff(
        shown.source_fragment.splitlines(keepends=True),
        shown.query.splitlines(keepends=True),
        fromfile=f"{source_key(m)}",
        tofile="this file",
        n=shown.query.count("\n") + shown.source_fragment.count("\n") + 1,  # one hunk: all of it
    )
    return "\n".join(head) + "\n" + "".join(line if line.endswith("\n") else line + "\n" for line in diff)


def evidence_json(shown: Shown) -> dict[str, Any]:
    """What `stacklens.evidence` answers: both texts, where they start, and the alignment."""
    m = shown.match
    return {
        "match": m.model_dump(mode="json"),
        "title": f"{source_key(m)} {lines_of(m)} ↔ this file",
        "query": {"text": shown.query, "firstLine": shown.query_first, "label": "this file"},
        "source": {
            "text": shown.source_fragment,
            "firstLine": m.source_span.start_line,
            "label": source_key(m),
            "origin": shown.source.origin,
            "reason": shown.source.reason,
        },
        "evidence": shown.evidence.to_json(),
    }


def _diff_file(text: str) -> Path:
    directory = Path(tempfile.gettempdir()) / "stacklens-evidence"
    directory.mkdir(exist_ok=True)
    path = directory / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.diff"
    path.write_text(text, encoding="utf-8")
    return path


async def _find(ls: StacklensServer, arg: dict[str, Any]) -> Shown | str:
    """The evidence of highlight ``{"uri", "id"}`` (or the one at ``{"uri", "position"}``)."""
    uri = str(arg.get("uri", ""))
    snap = ls.snapshot(uri)
    if snap is None:
        return f"unknown document {uri}"
    doc = snap[0]
    found = [h for h in ls.highlights.visible(uri) if str(h.id) == str(arg.get("id"))]
    if not found and isinstance(arg.get("position"), dict):
        pos = arg["position"]
        at = types.Position(line=int(pos.get("line", 0)), character=int(pos.get("character", 0)))
        found = ls.highlights.at(uri, doc.offset_at(at))
    if not found:
        return "no corpus match there"
    shown = await evidence_of(ls, doc, found[0], path_hint(uri))
    return shown if shown is not None else "the evidence could not be computed (see the server log)"


def register(ls: StacklensServer) -> None:
    @ls.command(EVIDENCE_COMMAND)
    async def evidence(ls: StacklensServer, *args: Any) -> dict[str, Any]:
        """Argument ``{"uri", "id"}`` (a diagnostic's ``data.id``) or ``{"uri", "position"}``."""
        arg = args[0] if args and isinstance(args[0], dict) else {}
        shown = await _find(ls, arg)
        return {"error": shown} if isinstance(shown, str) else evidence_json(shown)

    @ls.command(DIFF_COMMAND)
    async def show_diff(ls: StacklensServer, *args: Any) -> dict[str, Any]:
        """Writes the unified diff to a temporary file and asks the client to open it."""
        arg = args[0] if args and isinstance(args[0], dict) else {}
        shown = await _find(ls, arg)
        if isinstance(shown, str):
            ls.show(f"stacklens: {shown}", types.MessageType.Info)
            return {"shown": False, "error": shown}
        path = _diff_file(unified_diff(shown))
        caps = ls.client_capabilities.window
        if caps and caps.show_document and caps.show_document.support:
            result = await ls.window_show_document_async(
                types.ShowDocumentParams(uri=path.as_uri(), take_focus=True)
            )
            return {"shown": bool(result.success), "path": str(path)}
        ls.show(f"stacklens: the diff against the source is in {path}", types.MessageType.Info)
        return {"shown": False, "path": str(path)}
