"""``repo:DIR``: tasks cut from the user's own repository. Single lines and blocks are masked at
random (seeded: the same seed and files give the same tasks), and the repository's other files
are open beside the file as the editor would have them (the engine's cross-file context). No
code runs: completions are scored by exact match and edit similarity."""

from __future__ import annotations

import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stacklens.errors import InputError
from stacklens.languages import EXTENSIONS

from .datasets import Benchmark, OtherFile, Task

# Code files only: configuration (YAML, TOML, build files) has few lines worth completing.
_NOT_CODE = {"yaml", "toml", "makefile", "cmake"}
LANGUAGES = {ext: lang for ext, lang in EXTENSIONS.items() if lang not in _NOT_CODE}
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", "build", "dist"}
MAX_FILE_BYTES = 200_000  # larger files are generated or data more often than code
MAX_FILES = 5000
BLOCK_MAX_LINES = 12
_OPENERS = (":", "{", "(", "[", "=>", " do", " then")


@dataclass(frozen=True)
class SourceText:
    path: str  # relative, with /
    text: str
    language: str


def _listed(root: Path) -> list[str]:
    """Paths git would commit (.gitignore respected), else a walk that skips the usual build and
    dependency folders and honours a top-level .gitignore."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
            paths = out.decode("utf-8", "surrogateescape").split("\0")
            # Vendored dependencies and build output are not the team's code, even when committed.
            return sorted(p for p in paths if p and not _SKIP_DIRS.intersection(p.split("/")[:-1]))
        except (OSError, subprocess.SubprocessError):
            pass  # no git binary, or not a checkout after all: walk it
    import pathspec

    ignore = root / ".gitignore"
    spec = pathspec.GitIgnoreSpec.from_lines(
        ignore.read_text(errors="replace").splitlines() if ignore.is_file() else []
    )
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if not spec.match_file(rel):
                found.append(rel)
    return sorted(found)


def read_sources(root: Path) -> list[SourceText]:
    """The repository's source files, in path order."""
    out = []
    for rel in _listed(root):
        language = LANGUAGES.get(os.path.splitext(rel)[1].lower())
        path = root / rel
        if language is None or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(SourceText(rel, text.replace("\r\n", "\n"), language))
        if len(out) >= MAX_FILES:
            break
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _single_lines(lines: list[str]) -> list[tuple[int, int]]:
    # A line worth predicting: some code on it, not only brackets or punctuation.
    return [
        (i, i + 1)
        for i, ln in enumerate(lines)
        if len(ln.strip()) >= 4 and any(c.isalnum() for c in ln) and ln.endswith("\n")
    ]


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """The body of a block opener: the more-indented lines after it (2..BLOCK_MAX_LINES)."""
    out = []
    for i, ln in enumerate(lines[:-1]):
        if not ln.rstrip().endswith(_OPENERS) or not ln.strip():
            continue
        base, j = _indent(ln), i + 1
        while j < len(lines) and j - i <= BLOCK_MAX_LINES:
            nxt = lines[j]
            if nxt.strip() and _indent(nxt) <= base:
                break
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1  # trailing blank lines belong to what follows
        if j - (i + 1) >= 2 and lines[j - 1].endswith("\n"):
            out.append((i + 1, j))
    return out


def _open_files(sources: list[SourceText], current: SourceText, limit: int) -> tuple[OtherFile, ...]:
    """The files an editor would have open beside ``current``: its folder's first, then the rest."""
    folder = os.path.dirname(current.path)
    others = [s for s in sources if s.path != current.path]
    others.sort(key=lambda s: (os.path.dirname(s.path) != folder, s.path))
    return tuple(OtherFile(s.path, s.text) for s in others[:limit])


def load_repo(directory: str, *, count: int = 100, seed: int = 0, open_files: int = 8) -> Benchmark:
    """``count`` masked single lines and blocks (about half each) from the sources under
    ``directory``; the same ``seed`` gives the same tasks."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise InputError(f"repo:{directory}: no such directory (give repo:PATH of a source checkout)")
    sources = read_sources(root)
    if not sources:
        known = ", ".join(sorted(set(LANGUAGES.values())))
        raise InputError(f"repo:{directory}: no source files found (languages: {known})")
    rng = random.Random(seed)
    pools: dict[str, list[tuple[int, int, int]]] = {"line": [], "block": []}
    split = []
    for n, src in enumerate(sources):
        lines = src.text.splitlines(keepends=True)
        split.append(lines)
        pools["line"] += [(n, a, b) for a, b in _single_lines(lines)]
        pools["block"] += [(n, a, b) for a, b in _blocks(lines)]
    for pool in pools.values():
        rng.shuffle(pool)
    tasks: list[Task] = []
    seen: set[tuple[int, int, int]] = set()
    while len(tasks) < count and (pools["line"] or pools["block"]):
        kind = "block" if pools["block"] and (not pools["line"] or rng.random() < 0.5) else "line"
        n, a, b = pools[kind].pop()
        if (n, a, b) in seen:
            continue
        seen.add((n, a, b))
        src, lines = sources[n], split[n]
        tasks.append(
            Task(
                task_id=f"{src.path}:{a + 1}-{b}:{kind}",
                prompt="".join(lines[:a]),
                suffix="".join(lines[b:]),
                canonical_solution="".join(lines[a:b]),
                path=src.path,
                language=src.language,
                single_line=kind == "line",
                other_files=_open_files(sources, src, open_files),
            )
        )
    return Benchmark(f"repo:{root.name}", tasks, executes=False)
