"""A candidate match (a document and a stretch of the query, with its kind and score), and how
the chosen candidates become the `Match` objects a query returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from index.normalize import Tokens
from index.protocol import IndexStore

from .match import Match, QuerySpan, Source, SourceSpan


@dataclass
class Candidate:
    doc: int
    q_start: int  # token index
    q_end: int  # token index, exclusive
    # The source lines (first, last), resolved from the store for the matches reported only
    # (the embedded store keeps them in a line table, not in the postings).
    src_lines: Callable[[], tuple[int, int]]
    kind: str
    score: float
    chars: int
    occurrences: int = 1  # corpus files holding the matched code, at most (its rarest k-gram's)
    hit_start: int = -1  # token range its hits cover (inside [q_start, q_end)); -1: the same
    hit_end: int = -1

    @property
    def weight(self) -> float:
        # A verbatim source outranks a near one of about its length (near-identical files such
        # as generated codecs differ in a name or two), but a near chain that explains clearly
        # more of the query (the file an edited or comment-stripped copy came from) outranks a
        # short verbatim fragment that its near-identical siblings share. bench_membership: the
        # square beats both the 8th power (edited attribution 0.910 -> 0.935, comment-stripped
        # 0.975 -> 0.980) and the plain score.
        return self.chars * self.score**2


def trim_reaches(chosen: list[Candidate], tokens: Tokens) -> None:
    """Where what a match inferred past its hits (``Matcher._extent``) reaches over another
    match's hits, the hits win: two files copied one after the other are two spans, not one."""
    if len(chosen) < 2:
        return
    for c in chosen:
        if c.hit_start < 0:
            continue
        for o in chosen:
            if o is c or o.hit_start < 0 or o.doc == c.doc:
                continue
            if o.hit_end <= c.hit_start < o.q_end:
                o.q_end = max(o.hit_end, min(o.q_end, c.hit_start))
            if c.hit_end <= o.hit_start < c.q_end:
                c.q_end = max(c.hit_end, min(c.q_end, o.hit_start))
            if o.hit_start >= c.hit_end and c.q_end > o.q_start:
                o.q_start = max(o.q_start, c.q_end)
            if c.hit_start >= o.hit_end and o.q_end > c.q_start:
                c.q_start = max(c.q_start, o.q_end)
        c.chars = tokens.norm_chars(c.q_start, c.q_end)


def render(store: IndexStore, tokens: Tokens, found: list[Candidate], max_matches: int) -> list[Match]:
    """The best candidates, at most ``max_matches`` and one per document and stretch of the
    query, as matches with their sources' records and lines."""
    found.sort(key=lambda c: (-c.weight, c.doc, c.q_start))
    chosen: list[Candidate] = []
    for c in found:
        # The same document matching overlapping query text twice is one match (repeats).
        if any(o.doc == c.doc and o.q_start < c.q_end and c.q_start < o.q_end for o in chosen):
            continue
        chosen.append(c)
        if len(chosen) >= max_matches:
            break
    trim_reaches(chosen, tokens)
    matches = []
    for c in chosen:
        src_start, src_end = c.src_lines()
        doc = store.document(c.doc)
        matches.append(
            Match(
                kind=c.kind,
                score=c.score,
                source=Source(
                    repo=doc.get("repo"),
                    path=doc["path"],
                    license=doc.get("license"),
                    url=doc.get("url"),
                    sha=doc.get("sha"),
                ),
                source_span=SourceSpan(start_line=src_start, end_line=max(src_start, src_end)),
                query_span=QuerySpan(
                    start_line=int(tokens.line[c.q_start]),
                    end_line=int(tokens.end_line[c.q_end - 1]),
                    start_char=int(tokens.start[c.q_start]),
                    end_char=int(tokens.end[c.q_end - 1]),
                ),
                matched_chars=c.chars,
                occurrences=c.occurrences,
            )
        )
    return matches
