"""Benchmark cases for one language: spans of indexed files under clone-type transforms, and
negatives from held-out files that share no normalised 3-line window with the indexed half.

Spans are 5-40 lines with at least 150 non-whitespace characters (comments included), drawn at
random and not filtered for where they start: inside a comment, a string or a template literal
as it comes. Everything is seeded."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from corpora import LangCorpus
from transforms import edit_lines, nonspace, reindent, rename, strip_comments_delete_line, tokens

KINDS = ("verbatim", "reindented", "renamed", "comment_stripped", "embedded", "edited")
MIN_NONSPACE = 150


@dataclass
class Case:
    kind: str
    lang: str
    text: str
    source_path: str  # relative path of the file the copy came from ("" for negatives)
    span: tuple[int, int] | None = None  # char range of the copied part inside text (embedded)
    original: str = ""  # the span as the indexed file has it, before the transform


@dataclass
class CaseSet:
    cases: list[Case]
    negatives: list[Case]
    excluded: Counter[str] = field(default_factory=Counter)  # kind -> cases dropped, and why


def _draw(lines: list[str], rng: random.Random) -> tuple[int, int, str] | None:
    """(first line, line after the last, text) of a random span, or None when the file has
    none big enough."""
    for _ in range(20):
        n = rng.randint(5, 40)
        if len(lines) < n:
            n = len(lines)
        start = rng.randrange(0, len(lines) - n + 1)
        chunk = "".join(lines[start : start + n])
        if nonspace(chunk) >= MIN_NONSPACE:
            return start, start + n, chunk
    return None


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def make_cases(corpus: LangCorpus, per_kind: int, n_negatives: int, seed: int = 1) -> CaseSet:
    rng = random.Random(f"{seed}-{corpus.lang}")
    texts = {p: _lines(p) for p in corpus.indexed}
    pool = [p for p in corpus.indexed if len(texts[p]) >= 5]
    hosts = [lines for p in corpus.held_out[:400] if len(lines := _lines(p)) >= 30]
    seen_windows = corpus_windows(corpus)
    out = CaseSet([], make_negatives(corpus, n_negatives, seed + 1, seen_windows))
    lang = corpus.lang
    for kind in KINDS:
        made = 0
        while made < per_kind:
            path = rng.choice(pool)
            drawn = _draw(texts[path], rng)
            if drawn is None:
                continue
            first, stop, chunk = drawn
            rel = corpus.rel(path)
            if kind in ("renamed", "comment_stripped", "edited"):
                lines = texts[path]
                try:
                    toks = tokens(chunk, rel, "".join(lines[:first]), "".join(lines[stop:]))
                except ValueError:  # Pygments cannot lex this file faithfully: draw another
                    out.excluded[f"{kind}: Pygments does not round-trip the file"] += 1
                    continue
            if kind == "verbatim":
                case = Case(kind, lang, chunk, rel)
            elif kind == "reindented":
                case = Case(kind, lang, reindent(chunk, rng), rel)
            elif kind == "renamed":
                case = Case(kind, lang, rename(toks), rel)
            elif kind == "comment_stripped":
                stripped = strip_comments_delete_line(toks, lang, rng)
                if nonspace(stripped) < MIN_NONSPACE:
                    out.excluded[f"{kind}: under {MIN_NONSPACE} characters of code left"] += 1
                    continue
                case = Case(kind, lang, stripped, rel)
            elif kind == "edited":
                case = Case(kind, lang, edit_lines(toks, rng), rel)
            else:
                host = rng.choice(hosts)
                at = rng.randrange(10, len(host) - 10)
                before = "".join(host[at - 10 : at])
                after = "".join(host[at : at + 10])
                # Unseen means unseen: held-out files share licence headers and boilerplate
                # with the indexed half, and a host that does is a second, real copy.
                if (windows(before) | windows(after)) & seen_windows:
                    continue
                if not chunk.endswith("\n"):
                    chunk += "\n"
                case = Case(kind, lang, before + chunk + after, rel, (len(before), len(before) + len(chunk)))
            case.original = chunk
            out.cases.append(case)
            made += 1
    return out


def _norm_lines(text: str) -> list[str]:
    lines = ("".join(line.split()) for line in text.splitlines())
    return [x for x in lines if x]


def windows(text: str) -> set[int]:
    """Hashes of the 3-line windows of ``text`` (whitespace removed, blank lines skipped)."""
    lines = _norm_lines(text)
    out = set()
    for i in range(len(lines) - 2):
        out.add(hash("\n".join(lines[i : i + 3])))
    return out


def corpus_windows(corpus: LangCorpus) -> set[int]:
    """The 3-line windows of the indexed half (see ``windows``)."""
    out: set[int] = set()
    for p in corpus.indexed:
        out |= windows(p.read_text(encoding="utf-8"))
    return out


def make_negatives(
    corpus: LangCorpus, count: int, seed: int = 2, seen_windows: set[int] | None = None
) -> list[Case]:
    rng = random.Random(f"{seed}-{corpus.lang}")
    seen = corpus_windows(corpus) if seen_windows is None else seen_windows
    out: list[Case] = []
    candidates = list(corpus.held_out)
    rng.shuffle(candidates)
    for path in candidates * 5:  # up to five spans a file when the held-out half is small
        if len(out) >= count:
            break
        drawn = _draw(_lines(path), rng)
        if drawn is None or windows(drawn[2]) & seen:
            continue
        out.append(Case("negative", corpus.lang, drawn[2], ""))
    return out
