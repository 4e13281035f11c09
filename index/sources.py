"""Reading corpora: directories, git checkouts, JSONL(.gz) and Parquet files of The Stack's shape.

Every source yields `SourceFile`s with attribution metadata, and lists what it skipped and why
(index/skip.py has the rules). Names that are not valid UTF-8 are kept losslessly (index/names.py).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from stacklens.errors import InputError

from .config import BuildLimits
from .datasets import JsonlSource, ParquetSource
from .names import display_name, name_bytes_hex
from .normalize import LANG_OF_EXT, language_for
from .skip import LOCK_FILES, Skipped, SkipStats, SourceFile, file_text

__all__ = [
    "DirectorySource",
    "JsonlSource",
    "ParquetSource",
    "SkipStats",
    "Skipped",
    "SourceFile",
    "open_source",
]

# What pathlib's is_symlink and is_file read as "no such file" rather than an error.
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
_LICENSE_PATTERNS = [
    (re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE", re.I), "AGPL-3.0"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE", re.I), "LGPL"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 3", re.I), "GPL-3.0"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE\s+Version 2", re.I), "GPL-2.0"),
    (re.compile(r"Apache License,?\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"Mozilla Public License,?\s+(v\.|version)\s*2\.0", re.I), "MPL-2.0"),
    (re.compile(r"PYTHON SOFTWARE FOUNDATION LICENSE", re.I), "PSF-2.0"),
    (re.compile(r"Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Redistribution and use in source and binary forms", re.I), "BSD"),
]


def detect_license(root: Path) -> str | None:
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "LICENCE", "LICENSE.rst"):
        path = root / name
        if path.is_file():
            head = path.read_text(errors="replace")[:4000]
            for pattern, spdx in _LICENSE_PATTERNS:
                if pattern.search(head):
                    return spdx
            return "unknown"
    return None


def _git(root: Path, *args: str) -> str | None:
    try:  # surrogateescape: file names as os.walk gives them, whatever their bytes
        out = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _repo_from_remote(url: str) -> str | None:
    m = re.search(r"[:/]([^/:]+/[^/]+?)(?:\.git)?/?$", url.strip())
    return m.group(1) if m else None


class GitignoreFilter:
    """Applies every .gitignore from the root down, as git does for nested ignore files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[Path, pathspec.GitIgnoreSpec] = {}

    def load(self, directory: Path) -> None:
        ignore = directory / ".gitignore"
        if ignore.is_file():
            lines = ignore.read_text(errors="replace").splitlines()
            self._specs[directory] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in self._specs.items():
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False


@dataclass
class DirectorySource:
    """A directory tree; a git checkout gets its repository name, commit and URLs from git."""

    root: Path
    limits: BuildLimits
    repo: str | None = None
    license: str | None = None
    url_template: str | None = None
    extensions: frozenset[str] = frozenset(LANG_OF_EXT)
    exclude: tuple[str, ...] = ()  # gitignore-style patterns, relative to root
    paths: tuple[str, ...] | None = None  # only these relative paths (a file list), if given
    skip_generated: bool = False  # skip generated and minified files (index/skip.py)
    store_content: bool = False  # keep the files' text in the index (--store-content)

    def __post_init__(self) -> None:
        if not self.root.is_dir():
            raise InputError(f"source {display_name(str(self.root))} is not a directory")
        self.name = display_name(str(self.root))
        self._root_key = display_name(str(self.root.resolve()))
        self._abs_root = os.path.abspath(self.root)
        self._git_files: list[str] | None = None
        if (self.root / ".git").exists():
            listed = _git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            if listed is not None:
                self._git_files = [p for p in listed.split("\0") if p]
            remote = _git(self.root, "config", "--get", "remote.origin.url")
            commit = (_git(self.root, "rev-parse", "HEAD") or "").strip()
            if self.repo is None and remote:
                self.repo = _repo_from_remote(remote)
            if self.url_template is None and self.repo and commit and "github" in (remote or ""):
                self.url_template = f"https://github.com/{self.repo}/blob/{commit}/{{path}}"
        if self.license is None:
            self.license = detect_license(self.root)

    def _walk(self, stats: SkipStats) -> Iterator[str]:
        excluded = pathspec.GitIgnoreSpec.from_lines(self.exclude) if self.exclude else None
        for rel in self._walk_all(stats):
            if excluded is not None and excluded.match_file(rel):
                stats.skip("excluded", self.name, display_name(rel), "an --exclude pattern")
                continue
            yield rel

    def _walk_all(self, stats: SkipStats) -> Iterator[str]:
        if self.paths is not None:
            yield from self.paths
            return
        if self._git_files is not None:
            yield from sorted(self._git_files)
            return
        ignore = GitignoreFilter(self.root)
        for dirpath, dirnames, filenames in os.walk(self.root):
            d = Path(dirpath)
            ignore.load(d)
            kept = []
            for name in sorted(dirnames):
                if name in _SKIP_DIRS or ignore.ignored(d / name, True):
                    continue
                kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                rel = (d / name).relative_to(self.root).as_posix()
                if ignore.ignored(d / name, False):
                    stats.skip("gitignored", self.name, display_name(rel), "a .gitignore pattern")
                    continue
                yield rel

    @property
    def key_prefix(self) -> str:
        """What every document key of this tree starts with."""
        return f"{display_name(self.repo) if self.repo else self._root_key}::"

    @property
    def prune_prefix(self) -> str | None:
        """Keys under this prefix that a build of the whole tree no longer sees were deleted from
        it; a file list (``paths``) covers only part of the tree, so it prunes nothing."""
        return self.key_prefix if self.paths is None else None

    def files(self, stats: SkipStats) -> Iterator[SourceFile]:
        # os calls on one joined string, not pathlib: a Path made, joined and asked for its
        # suffix per file was a third of listing and reading (8,269 files of 100 MB: 0.28-0.36 s
        # of CPU before, 0.19 s after).
        for rel in self._walk(stats):
            name = rel.rpartition("/")[2]
            dot = name.rfind(".")
            if not 0 < dot < len(name) - 1 or name[dot:].lower() not in self.extensions:  # Path.suffix
                continue
            shown = display_name(rel)
            if self.skip_generated and name in LOCK_FILES:
                stats.skip("generated", self.name, shown, "a lock file")
                continue
            file = os.path.join(self._abs_root, rel)
            try:
                # One lstat for what is_symlink, is_file and stat asked in three system calls.
                info = os.lstat(file)
            except (OSError, ValueError) as exc:
                if isinstance(exc, ValueError) or exc.errno in _ABSENT:
                    continue  # as Path.is_file: not there (or a name the OS cannot hold)
                stats.skip("unreadable", self.name, shown, exc.strerror)
                continue
            if not stat.S_ISREG(info.st_mode):  # a symlink, a directory, a device
                continue
            try:
                size = info.st_size
                if size > self.limits.max_file_bytes:
                    limit = self.limits.max_file_bytes
                    stats.skip(
                        "over-large", self.name, shown, f"{size:,} bytes, over --max-file-bytes {limit:,}"
                    )
                    continue
                with open(file, "rb") as f:
                    data = f.read()
            except OSError as exc:
                stats.skip("unreadable", self.name, shown, exc.strerror)
                continue
            text, reason, detail = file_text(data, self.limits, self.skip_generated)
            if text is None:
                stats.skip(reason, self.name, shown, detail)
                continue
            raw = name_bytes_hex(rel)
            if self.url_template is None:
                url = None
            else:  # an undecodable name can only be a URL percent-encoded
                url = self.url_template.format(path=urllib.parse.quote(os.fsencode(rel)) if raw else rel)
            yield SourceFile(
                # NUL cannot occur in a path: the hex keeps undecodable names apart from
                # names that really contain "\xNN"
                key=f"{self.key_prefix}{shown}" + (f"\0{raw}" if raw else ""),
                text=text,
                path=shown,
                repo=display_name(self.repo) if self.repo else None,
                license=self.license,
                url=display_name(url) if url else None,
                lang=language_for(rel),
                path_bytes=raw,
                source=self.name,
                file=file,
                store_content=self.store_content,
            )


def open_source(
    spec: str,
    limits: BuildLimits,
    exclude: tuple[str, ...] = (),
    *,
    skip_generated: bool = False,
    store_content: bool | None = None,
    **meta: str | None,
) -> DirectorySource | JsonlSource | ParquetSource:
    """A source from a command-line argument; ``skip_generated`` applies to directories only.
    ``store_content``: keep the text in the index (default: datasets yes, directories no)."""
    path = Path(spec)
    if not path.exists():
        raise InputError(f"source {display_name(spec)} does not exist")
    if path.is_dir():
        return DirectorySource(
            path,
            limits,
            repo=meta.get("repo"),
            license=meta.get("license"),
            url_template=meta.get("url_template"),
            exclude=exclude,
            skip_generated=skip_generated,
            store_content=bool(store_content),
        )
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        return JsonlSource(path, limits, store_content is not False)
    if name.endswith(".parquet"):
        return ParquetSource(path, limits, store_content is not False)
    raise InputError(
        f"source {display_name(spec)}: expected a directory, a .jsonl/.jsonl.gz or a .parquet file"
    )
