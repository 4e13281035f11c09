"""Benchmark cases built from an indexed corpus: copies under clone-type transforms, and
negatives from held-out files that share no normalised 3-line window with the corpus."""

from __future__ import annotations

import keyword
import random
import re
from dataclasses import dataclass
from pathlib import Path

from index.normalize import keywords_for, normalized_text

KINDS = ("verbatim", "reindented", "renamed", "comment_stripped", "embedded", "edited")
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b(?![\"'])")
# With their prefixes (b"", rb'', f""): renaming the b of b"..." would make invalid code.
_STRINGS = re.compile(
    r"((?:\b[rRbBuUfF]{1,2})?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'))"
)


@dataclass
class Case:
    kind: str
    text: str
    source_path: str  # relative path of the file the copy came from ("" for negatives)
    span: tuple[int, int] | None = None  # char range of the copied part inside text


def _span(lines: list[str], rng: random.Random, min_chars: int, max_chars: int) -> tuple[int, int] | None:
    for _ in range(20):
        n = rng.randint(8, 40)
        if len(lines) <= n:
            continue
        start = rng.randrange(0, len(lines) - n)
        chunk = "".join(lines[start : start + n])
        if min_chars <= len(normalized_text(chunk, "python")) and len(chunk) <= max_chars:
            return start, start + n
    return None


def reindent(text: str, rng: random.Random) -> str:
    out = []
    for line in text.splitlines(keepends=False):
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 4
        out.append("  " * depth + stripped + " " * rng.randint(0, 2))
        if rng.random() < 0.15:
            out.append("")
    return "\n".join(out) + "\n"


def rename(text: str) -> str:
    """Consistently rename every identifier that is not a keyword or builtin (outside strings)."""
    names: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        word = m.group()
        if word in keywords_for("python") or keyword.iskeyword(word):
            return word
        return names.setdefault(word, f"v{len(names)}_{word[::-1].lower()[:3]}")

    parts = _STRINGS.split(text)
    return "".join(p if i % 2 else _IDENT.sub(sub, p) for i, p in enumerate(parts))


def strip_comments_delete_line(text: str, rng: random.Random) -> str:
    lines = [re.sub(r"\s*#[^'\"\n]*$", "", line) for line in text.splitlines()]
    lines = [line for line in lines if line.strip()]
    if len(lines) > 4:
        del lines[rng.randrange(1, len(lines) - 1)]
    return "\n".join(lines) + "\n"


def edit_lines(text: str, rng: random.Random) -> str:
    """Scattered edits (clone type 3): every third line or so gets a token changed or added."""
    out = []
    for i, line in enumerate(text.splitlines()):
        if line.strip() and i % 3 == 1:
            words = list(_IDENT.finditer(line))
            if words and rng.random() < 0.7:
                w = rng.choice(words)
                line = line[: w.start()] + w.group() + "_changed" + line[w.end() :]
            else:
                line = line + "  # edited"
                line = line.replace("(", "( ", 1)
        out.append(line)
    return "\n".join(out) + "\n"


def make_cases(
    seen: list[Path], unseen: list[Path], root_of: dict[Path, Path], per_kind: int, seed: int = 1
) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    texts = {p: p.read_text() for p in seen}
    pool = [p for p in seen if texts[p].count("\n") > 30]
    unseen_lines = [p.read_text().splitlines(keepends=True) for p in unseen[:200]]
    for kind in KINDS:
        made = 0
        while made < per_kind:
            path = rng.choice(pool)
            lines = texts[path].splitlines(keepends=True)
            span = _span(lines, rng, 300, 2000 if kind != "embedded" else 900)
            if span is None:
                continue
            chunk = "".join(lines[span[0] : span[1]])
            rel = path.relative_to(root_of[path]).as_posix()
            if kind == "verbatim":
                case = Case(kind, chunk, rel)
            elif kind == "reindented":
                case = Case(kind, reindent(chunk, rng), rel)
            elif kind == "renamed":
                case = Case(kind, rename(chunk), rel)
            elif kind == "comment_stripped":
                case = Case(kind, strip_comments_delete_line(chunk, rng), rel)
            elif kind == "edited":
                case = Case(kind, edit_lines(chunk, rng), rel)
            else:
                host = rng.choice(unseen_lines)
                if len(host) < 30:
                    continue
                at = rng.randrange(10, len(host) - 10)
                before = "".join(host[at - 10 : at])
                after = "".join(host[at : at + 10])
                if not before.endswith("\n"):
                    before += "\n"
                case = Case(kind, before + chunk + after, rel, (len(before), len(before) + len(chunk)))
            # Every case must be comfortably above the minimum match size once transformed.
            copied = case.text[case.span[0] : case.span[1]] if case.span else case.text
            if len(normalized_text(copied, "python")) < 300:
                continue
            cases.append(case)
            made += 1
    return cases


def _windows(text: str) -> set[str]:
    lines = [normalized_text(line, "python") for line in text.splitlines()]
    lines = [x for x in lines if x]
    return {"\n".join(lines[i : i + 3]) for i in range(max(0, len(lines) - 2))}


def make_negatives(seen: list[Path], unseen: list[Path], count: int, seed: int = 2) -> list[Case]:
    rng = random.Random(seed)
    corpus_windows: set[str] = set()
    for p in seen:
        corpus_windows |= _windows(p.read_text())
    out: list[Case] = []
    candidates = list(unseen)
    rng.shuffle(candidates)
    for path in candidates:
        if len(out) >= count:
            break
        lines = path.read_text().splitlines(keepends=True)
        span = _span(lines, rng, 300, 2000)
        if span is None:
            continue
        chunk = "".join(lines[span[0] : span[1]])
        if _windows(chunk) & corpus_windows:
            continue
        out.append(Case("negative", chunk, ""))
    return out
