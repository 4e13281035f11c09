"""``code-search scan``: check files, or only the lines a git diff adds, and judge every match
with the policy. What is checked is a list of `Target` (a text and the file line it starts
at); a match's lines are moved by that offset, so they point into the file."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from index.config import BuildLimits
from index.skip import SkipStats, file_text
from index.sources import DirectorySource
from stacklens.errors import InputError, StacklensError

from .allowlist import source_key
from .match import Match
from .policy import Decision, MatchPolicy
from .windows import line_windows

GIT_TIMEOUT_S = 120
# A file is checked in windows of whole lines: under the service's 100,000-character snippet limit,
# and each window gets its own --max-matches. Windows overlap by more than a long function, so a
# copy across a boundary is whole in one of them (a copy found twice is reported once).
WINDOW_CHARS = 50_000
OVERLAP_CHARS = 4_000
_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class _Checker(Protocol):
    def check(self, text: str, lang: str | None = None, path: str | None = None) -> list[Match]: ...


@dataclass(frozen=True)
class Target:
    """Text to check: a whole file (``first_line`` 1) or the lines one diff hunk adds."""

    path: str  # as reported: relative to the working directory, ``/``-separated
    text: str
    first_line: int = 1


@dataclass(frozen=True)
class Finding:
    """A match in a scanned file, its lines and columns in that file, and the policy's verdict."""

    path: str
    match: Match  # query_span lines are file lines; chars are offsets into the target's text
    decision: Decision
    start_line: int
    start_column: int  # 1-based, in code points; end_column is one past the last character
    end_line: int
    end_column: int


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)  # ignored ones included
    checked: int = 0  # targets checked
    files: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: SkipStats = field(default_factory=SkipStats)

    def reported(self) -> list[Finding]:
        return [f for f in self.findings if f.decision.verdict != "ignore"]


def _shown(path: Path) -> str:
    rel = os.path.relpath(path) if path.is_absolute() else os.path.normpath(path)
    return Path(rel).as_posix()


def file_targets(paths: Sequence[str], limits: BuildLimits, result: ScanResult) -> Iterator[Target]:
    """Each named file, and the source files of each named directory (``.gitignore`` and the
    build's binary and size rules respected)."""
    for name in paths:
        p = Path(name)
        if p.is_dir():
            source = DirectorySource(p, limits)
            for f in source.files(result.skipped):
                yield Target(_shown(p / f.path), f.text)
        elif p.is_file():
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read {name}: {exc.strerror}") from None
            text, reason, detail = file_text(data, limits, False)
            if text is None:
                result.skipped.skip(reason, name, name, detail)
                continue
            yield Target(_shown(p), text)
        else:
            raise InputError(f"cannot scan {name}: no such file or directory")


def _git(args: list[str], cwd: Path | None = None) -> bytes:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise InputError("--diff needs git on PATH") from None
    except subprocess.TimeoutExpired:
        raise StacklensError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    if r.returncode != 0:
        msg = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"git {' '.join(args[:2])} failed: {msg[-1] if msg else r.returncode}")
    return r.stdout


def _unquote(raw: bytes) -> bytes:
    """A path as git prints it: C-quoted (``"a\\303\\251.py"``) when it has unusual bytes."""
    if not raw.startswith(b'"'):
        return raw
    body, out, i = raw[1:-1], bytearray(), 0
    escapes = {ord("n"): 10, ord("t"): 9, ord('"'): 34, ord("\\"): 92, ord("a"): 7, ord("b"): 8}
    escapes |= {ord("f"): 12, ord("r"): 13, ord("v"): 11}
    while i < len(body):
        c = body[i]
        if c == 92 and i + 1 < len(body):
            nxt = body[i + 1]
            if 48 <= nxt <= 55:
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def parse_added(diff: bytes) -> Iterator[tuple[bytes, int, list[bytes]]]:
    """``(path, first new line, added lines)`` for each hunk of a ``--unified=0`` patch that
    adds lines; deleted files and binary changes add none."""
    path: bytes | None = None
    start = 0
    lines: list[bytes] = []
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            target = line[4:].rstrip(b"\t")
            path = None if target == b"/dev/null" else _unquote(target).removeprefix(b"b/")
            continue
        m = _HUNK.match(line)
        if m:
            if path is not None and lines:
                yield path, start, lines
            start, lines = int(m.group(1)), []
            continue
        if line.startswith(b"+") and path is not None:
            lines.append(line[1:])
        elif line.startswith(b"diff --git") and path is not None and lines:
            yield path, start, lines
            path, lines = None, []
    if path is not None and lines:
        yield path, start, lines


def diff_targets(rev_range: str, paths: Sequence[str], result: ScanResult) -> Iterator[Target]:
    """The hunks ``git diff RANGE -- PATH...`` adds, one target each."""
    if rev_range.startswith("-"):
        raise InputError(f"--diff takes a revision range such as origin/main...HEAD, not {rev_range!r}")
    top = Path(_git(["rev-parse", "--show-toplevel"]).decode("utf-8", "surrogateescape").strip())
    patch = _git(
        ["diff", "--no-color", "--no-ext-diff", "--unified=0", "--diff-filter=d", rev_range, "--", *paths]
    )
    seen: set[bytes] = set()
    for raw_path, start, lines in parse_added(patch):
        seen.add(raw_path)
        text = b"\n".join(lines) + b"\n"
        if b"\x00" in text:
            continue
        decoded = text.decode("utf-8", "replace").replace("\r\n", "\n")
        yield Target(_shown(top / os.fsdecode(raw_path)), decoded, start)
    result.files = len(seen)


def windows(t: Target, size: int = WINDOW_CHARS, overlap: int = OVERLAP_CHARS) -> Iterator[Target]:
    """``t`` itself when it is short, else overlapping windows of its whole lines
    (`membership.windows.line_windows`), each starting at its file line."""
    if len(t.text) <= size:
        yield t
        return
    line, counted = t.first_line, 0
    for start, end in line_windows(t.text, size, overlap):
        line += t.text.count("\n", counted, start)
        counted = start
        yield Target(t.path, t.text[start:end], line)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def locate(target: Target, m: Match) -> tuple[int, int, int, int]:
    """File lines and columns of ``m`` in ``target``: start line and column, end line and the
    column one past its last character (line breaks at the end not counted)."""
    text = target.text
    start = min(m.query_span.start_char, len(text))
    end = min(max(m.query_span.end_char, start), len(text))
    while end > start + 1 and text[end - 1] in "\r\n":
        end -= 1
    sl, sc = _line_col(text, start)
    el, ec = _line_col(text, max(start, end - 1))
    offset = target.first_line - 1
    return sl + offset, sc, el + offset, ec + (1 if end > start else 0)


def scan(
    targets: Iterator[Target], checker: _Checker, policy: MatchPolicy, result: ScanResult | None = None
) -> ScanResult:
    """Check every target and judge each match; a text the checker refuses is an error, not a
    stop (any other error, such as a service that is down, is raised)."""
    result = result or ScanResult()
    files: set[str] = set()
    for t in (w for target in targets for w in windows(target)):
        if not t.text.strip():
            continue
        files.add(t.path)
        try:
            matches = checker.check(t.text, path=t.path)
        except InputError as exc:  # this text; a dead service or a wrong token stops the scan
            result.errors.append(f"{t.path}:{t.first_line}: {exc}")
            continue
        result.checked += 1
        for m in matches:
            sl, sc, el, ec = locate(t, m)
            span = m.query_span.model_copy(update={"start_line": sl, "end_line": el})
            moved = m.model_copy(update={"query_span": span})
            result.findings.append(Finding(t.path, moved, policy.decide(m, t.path), sl, sc, el, ec))
    result.findings = _once(result.findings)
    result.files = max(result.files, len(files))
    return result


def _overlap(a: Finding, b: Finding) -> bool:
    sa, sb = a.match.source_span, b.match.source_span
    return (
        a.path == b.path
        and source_key(a.match) == source_key(b.match)
        and a.start_line <= b.end_line
        and b.start_line <= a.end_line
        and sa.start_line <= sb.end_line
        and sb.start_line <= sa.end_line
    )


def _once(findings: list[Finding]) -> list[Finding]:
    """One finding per copy: two windows that saw the same copy (overlapping lines on both
    sides) keep the longer match."""
    by_file: dict[str, list[Finding]] = {}
    for f in findings:
        kept = by_file.setdefault(f.path, [])
        same = next((i for i, g in enumerate(kept) if _overlap(f, g)), None)
        if same is None:
            kept.append(f)
        elif f.match.matched_chars > kept[same].match.matched_chars:
            kept[same] = f
    return [f for kept in by_file.values() for f in kept]
