"""Side-by-side evidence for a match: the query's lines and the source's lines aligned, with the
tokens that differ marked on each side and renamed identifiers explained as a mapping.

Both texts go through the index's own lexer (index/normalize.py), so what the evidence calls
"the same" is what the index matched on: whitespace never differs, and a renamed identifier is
the same abstract token with another spelling. The token streams are aligned on their abstract
form with rapidfuzz's Levenshtein opcodes; inside aligned runs an identifier spelled differently
is a rename, and the renames a source identifier takes most often form the mapping. Everything
else that the alignment could not pair (an edited literal, an inserted call) is "changed".
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rapidfuzz.distance import Levenshtein

from index.content import FILE, ContentReader
from index.normalize import PLACEHOLDER_ID, tokenize

from .match import Match

MarkKind = Literal["renamed", "changed"]
RowStatus = Literal["same", "renamed", "changed", "query-only", "source-only"]
# Tokens aligned per side: the opcodes cost O(n * m / 64) words of memory, about 6 MB at this
# size, and a match longer than this is shown up to here (``truncated``).
MAX_TOKENS = 20_000


@dataclass(frozen=True)
class Mark:
    """Columns ``[start, end)`` of one line's text that differ from the other side."""

    start: int
    end: int
    kind: MarkKind


@dataclass(frozen=True)
class Row:
    """One line of the side-by-side view; a side is None where the other has a line of its own."""

    query_line: int | None
    query_text: str | None
    source_line: int | None
    source_text: str | None
    query_marks: tuple[Mark, ...] = ()
    source_marks: tuple[Mark, ...] = ()

    @property
    def status(self) -> RowStatus:
        if self.source_line is None:
            return "query-only"
        if self.query_line is None:
            return "source-only"
        kinds = {m.kind for m in (*self.query_marks, *self.source_marks)}
        if "changed" in kinds:
            return "changed"
        return "renamed" if kinds else "same"


@dataclass(frozen=True)
class Evidence:
    """The aligned rows; ``renames`` maps source identifiers to the query's spelling. Without
    source text (``reason`` says why) the rows hold the query's lines only."""

    rows: tuple[Row, ...]
    renames: dict[str, str] = field(default_factory=dict, hash=False)
    origin: str | None = None  # where the source text came from: "index" or "file"
    reason: str | None = None
    truncated: bool = False

    @property
    def same_lines(self) -> int:
        return sum(r.status == "same" for r in self.rows)

    @classmethod
    def from_json(cls, data: dict[str, Any], query_line_offset: int = 0) -> Evidence:
        """The inverse of `to_json` (what ``POST /v1/evidence`` answers); query line numbers
        move by ``query_line_offset`` (the checked text was a part of a file)."""

        def marks(side: dict[str, Any] | None) -> tuple[Mark, ...]:
            return tuple(
                Mark(int(m["start"]), int(m["end"]), m["kind"]) for m in (side or {}).get("marks", [])
            )

        rows = []
        for r in data.get("rows", []):
            q, s = r.get("query"), r.get("source")
            rows.append(
                Row(
                    query_line=None if q is None else int(q["line"]) + query_line_offset,
                    query_text=None if q is None else str(q["text"]),
                    source_line=None if s is None else int(s["line"]),
                    source_text=None if s is None else str(s["text"]),
                    query_marks=marks(q),
                    source_marks=marks(s),
                )
            )
        return cls(
            rows=tuple(rows),
            renames={str(k): str(v) for k, v in (data.get("renames") or {}).items()},
            origin=data.get("origin"),
            reason=data.get("reason"),
            truncated=bool(data.get("truncated")),
        )

    def to_json(self) -> dict[str, Any]:
        def marks(ms: tuple[Mark, ...]) -> list[dict[str, Any]]:
            return [{"start": m.start, "end": m.end, "kind": m.kind} for m in ms]

        return {
            "rows": [
                {
                    "status": r.status,
                    "query": None
                    if r.query_line is None
                    else {"line": r.query_line, "text": r.query_text, "marks": marks(r.query_marks)},
                    "source": None
                    if r.source_line is None
                    else {"line": r.source_line, "text": r.source_text, "marks": marks(r.source_marks)},
                }
                for r in self.rows
            ],
            "renames": dict(self.renames),
            "origin": self.origin,
            "reason": self.reason,
            "truncated": self.truncated,
        }


@dataclass
class _Side:
    text: str
    first_line: int
    toks: list[str]
    abstract: list[int]
    ident: list[bool]  # a code identifier (the lexer's placeholder)
    word: list[bool]  # a code identifier or a keyword-like word: what a rename can produce
    line: list[int]  # 0-based line of the text
    col: list[tuple[int, int]]  # columns in its line
    lines: list[str]

    @classmethod
    def of(cls, text: str, first_line: int) -> _Side:
        t = tokenize(text)
        n = min(len(t), MAX_TOKENS)
        starts, ends = t.start[:n].tolist(), t.end[:n].tolist()
        line = (t.line[:n] - 1).tolist()
        toks = [text[a:b] for a, b in zip(starts, ends, strict=True)]
        lines = text.split("\n")
        line_start = [0]
        for ln in lines[:-1]:
            line_start.append(line_start[-1] + len(ln) + 1)
        return cls(
            text=text,
            first_line=first_line,
            toks=toks,
            abstract=t.abstract[:n].tolist(),
            ident=(t.abstract[:n] == PLACEHOLDER_ID).tolist(),
            word=[tok.isidentifier() and not c for tok, c in zip(toks, t.comment[:n].tolist(), strict=True)],
            line=line,
            col=[
                (a - line_start[ln], b - line_start[ln]) for a, b, ln in zip(starts, ends, line, strict=True)
            ],
            lines=lines,
        )


def _pairs(q: _Side, s: _Side) -> tuple[list[tuple[int, int]], set[int], set[int]]:
    """Aligned token pairs, and the unpaired tokens of each side. Pairs are the abstract tokens
    the alignment found equal, and the words facing each other one for one in a replaced run
    when one of them is an identifier: a name renamed to a word the lexer keeps as written
    (``payload`` to ``data``, a keyword of some language) is a rename too."""
    vocab: dict[int, int] = {}
    qa = [vocab.setdefault(x, len(vocab)) for x in q.abstract]
    sa = [vocab.setdefault(x, len(vocab)) for x in s.abstract]
    pairs: list[tuple[int, int]] = []
    for op in Levenshtein.opcodes(qa, sa):
        both = zip(range(op.src_start, op.src_end), range(op.dest_start, op.dest_end), strict=False)
        if op.tag == "equal":
            pairs.extend(both)
        elif op.tag == "replace" and op.src_end - op.src_start == op.dest_end - op.dest_start:
            pairs.extend((i, j) for i, j in both if q.word[i] and s.word[j] and (q.ident[i] or s.ident[j]))
    paired_q = {i for i, _ in pairs}
    paired_s = {j for _, j in pairs}
    return pairs, set(range(len(qa))) - paired_q, set(range(len(sa))) - paired_s


def _renames(q: _Side, s: _Side, pairs: list[tuple[int, int]]) -> dict[str, str]:
    """Per source identifier, the spelling it has most often in the query (itself included:
    an identifier kept in most places is not renamed)."""
    seen: dict[str, Counter[str]] = {}
    for i, j in pairs:
        if q.word[i] and s.word[j] and (q.ident[i] or s.ident[j]):
            seen.setdefault(s.toks[j], Counter())[q.toks[i]] += 1
    out: dict[str, str] = {}
    for src, counts in seen.items():
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0] == src))[0]
        if best != src:
            out[src] = best
    return out


def _line_pairs(q: _Side, s: _Side, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A strictly increasing chain of (query line, source line): each line is paired with the
    other side's line of its first aligned token."""
    out: list[tuple[int, int]] = []
    for i, j in pairs:
        ql, sl = q.line[i], s.line[j]
        if not out or (ql > out[-1][0] and sl > out[-1][1]):
            out.append((ql, sl))
    return out


def _merge(marks: list[tuple[int, int, MarkKind]], text: str) -> tuple[Mark, ...]:
    """Adjacent marks of one kind become one span (the whitespace between them included)."""
    out: list[Mark] = []
    for a, b, kind in sorted(marks):
        if out and out[-1].kind == kind and not text[out[-1].end : a].strip():
            out[-1] = Mark(out[-1].start, b, kind)
        else:
            out.append(Mark(a, b, kind))
    return tuple(out)


def _rows(
    q: _Side, s: _Side, chain: list[tuple[int, int]], qm: dict[int, list[Any]], sm: dict[int, list[Any]]
) -> Iterator[Row]:
    def row(ql: int | None, sl: int | None) -> Row:
        return Row(
            query_line=None if ql is None else q.first_line + ql,
            query_text=None if ql is None else q.lines[ql],
            source_line=None if sl is None else s.first_line + sl,
            source_text=None if sl is None else s.lines[sl],
            query_marks=() if ql is None else _merge(qm.get(ql, []), q.lines[ql]),
            source_marks=() if sl is None else _merge(sm.get(sl, []), s.lines[sl]),
        )

    last_q, last_s = _last_line(q), _last_line(s)
    pq, ps = 0, 0
    for ql, sl in [*chain, (last_q + 1, last_s + 1)]:
        # Lines between two paired lines face each other in order, the longer side's rest alone.
        gap_q, gap_s = list(range(pq, ql)), list(range(ps, sl))
        for k in range(max(len(gap_q), len(gap_s))):
            yield row(gap_q[k] if k < len(gap_q) else None, gap_s[k] if k < len(gap_s) else None)
        if ql <= last_q and sl <= last_s:
            yield row(ql, sl)
        pq, ps = ql + 1, sl + 1


def _last_line(side: _Side) -> int:
    """The last line to show: a trailing newline opens no line of its own."""
    n = len(side.lines) - 1
    return n - 1 if n > 0 and side.lines[n] == "" else n


def align(query: str, source: str, *, query_start_line: int = 1, source_start_line: int = 1) -> Evidence:
    """The side-by-side evidence of ``query`` against ``source``; line numbers count from the
    given first lines (where the texts sit in their files)."""
    q, s = _Side.of(query, query_start_line), _Side.of(source, source_start_line)
    pairs, lone_q, lone_s = _pairs(q, s)
    renames = _renames(q, s, pairs)
    qm: dict[int, list[tuple[int, int, MarkKind]]] = {}
    sm: dict[int, list[tuple[int, int, MarkKind]]] = {}

    def mark(side: _Side, marks: dict[int, list[Any]], k: int, kind: MarkKind) -> None:
        marks.setdefault(side.line[k], []).append((*side.col[k], kind))

    for i, j in pairs:
        if q.toks[i] == s.toks[j]:
            continue
        # Only words are paired and spelled differently (the abstract stream keeps everything
        # but identifiers as written); one the mapping explains is a rename.
        kind: MarkKind = "renamed" if renames.get(s.toks[j]) == q.toks[i] else "changed"
        mark(q, qm, i, kind)
        mark(s, sm, j, kind)
    for i in lone_q:
        mark(q, qm, i, "changed")
    for j in lone_s:
        mark(s, sm, j, "changed")
    rows = tuple(_rows(q, s, _line_pairs(q, s, pairs), qm, sm))
    truncated = len(q.toks) >= MAX_TOKENS or len(s.toks) >= MAX_TOKENS
    return Evidence(rows=rows, renames=renames, truncated=truncated)


def query_only(query: str, reason: str, *, query_start_line: int = 1) -> Evidence:
    """Evidence without source text: the query's lines, and why the source is missing."""
    lines = query.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    rows = tuple(Row(query_start_line + k, text, None, None) for k, text in enumerate(lines))
    return Evidence(rows=rows, reason=reason)


def line_slice(text: str, first: int, last: int) -> str:
    """Lines ``first..last`` (1-based, inclusive) of ``text``, newlines kept."""
    return "".join(text.splitlines(keepends=True)[max(first - 1, 0) : max(last, 0)])


def for_match(
    m: Match, query: str, source: str | None, *, origin: str | None = None, reason: str | None = None
) -> Evidence:
    """The evidence of ``m``: its query span (whole lines of ``query``) against its source span
    (lines of ``source``, the whole source document); without ``source``, ``reason`` is shown."""
    qs = m.query_span
    lo = query.rfind("\n", 0, qs.start_char) + 1
    hi = query.find("\n", max(qs.end_char - 1, lo))
    fragment = query[lo : len(query) if hi < 0 else hi + 1]
    first = query.count("\n", 0, lo) + 1
    if source is None:
        return query_only(fragment, reason or "the source text is not available", query_start_line=first)
    src = line_slice(source, m.source_span.start_line, m.source_span.end_line)
    ev = align(fragment, src, query_start_line=first, source_start_line=m.source_span.start_line)
    return Evidence(rows=ev.rows, renames=ev.renames, origin=origin, truncated=ev.truncated)


@dataclass(frozen=True)
class SourceText:
    """A match's source document: its text and where it came from, or why there is none."""

    text: str | None
    origin: Literal["index", "file"] | None = None
    reason: str | None = None


_READERS: dict[str, ContentReader] = {}
_READERS_LOCK = threading.Lock()
NO_CONTENT = (
    "the index keeps no text of this document; rebuild it with `code-search build --store-content` "
    "(datasets keep it by default)"
)


def _reader(index_path: str | os.PathLike[str]) -> ContentReader:
    key = os.path.abspath(index_path)
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is None:
            reader = _READERS[key] = ContentReader(key)
        return reader


def _from_file(path: str, sha: str) -> SourceText:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return SourceText(None, reason=f"the corpus file {path} is gone and the index keeps no copy of it")
    except OSError as exc:
        return SourceText(None, reason=f"cannot read the corpus file {path}: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest() != sha:
        return SourceText(None, reason=f"the corpus file {path} changed since it was indexed")
    return SourceText(text, origin="file")


def source_text(store: object, m: Match) -> SourceText:
    """The text of ``m``'s source document: kept in the index (``--store-content``), else read
    from the corpus file while it is unchanged, else None with the reason."""
    sha = m.source.sha
    path = getattr(store, "path", None)
    if not sha:
        return SourceText(
            None, reason="the match names no source document (a remote service, or an older index)"
        )
    if not isinstance(path, (str, os.PathLike)):
        return SourceText(None, reason="this index backend keeps no source text")
    reader = _reader(path)
    entry = reader.entry(sha)
    if entry is None:
        return SourceText(None, reason=NO_CONTENT)
    if entry[0] == FILE:
        return _from_file(os.fsdecode(entry[1]), sha)
    text = reader.text(sha)
    return SourceText(text, origin="index") if text is not None else SourceText(None, reason=NO_CONTENT)


def evidence(store: object, m: Match, query: str) -> Evidence:
    """``for_match`` with the source text looked up in ``store``."""
    src = source_text(store, m)
    return for_match(m, query, src.text, origin=src.origin, reason=src.reason)
