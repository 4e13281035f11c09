"""Repositories and single matches a user chose to accept, kept per workspace in
``.stacklens/allowlist.json`` (the language server writes it; ``code-search scan`` reads it)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .match import Match

log = logging.getLogger(__name__)
ALLOWLIST_FILE = Path(".stacklens") / "allowlist.json"


def source_key(m: Match) -> str:
    """``repo/path`` (or just the path when the corpus has no repository name)."""
    return f"{m.source.repo}/{m.source.path}" if m.source.repo else m.source.path


class Allowlist:
    """Allow-listed repositories and ignored matches of the workspace at ``root`` (none without)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.repos: set[str] = set()
        self.ignored: set[tuple[str, str, int, int]] = set()  # (file, source, start, end)
        self.load()

    @property
    def file(self) -> Path | None:
        return self.root / ALLOWLIST_FILE if self.root else None

    def load(self) -> None:
        f = self.file
        if f is None or not f.is_file():
            return
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            self.repos = {str(r) for r in data.get("repositories", [])}
            self.ignored = {
                (str(i["file"]), str(i["source"]), int(i["lines"][0]), int(i["lines"][1]))
                for i in data.get("ignored", [])
            }
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.warning("ignoring unreadable allow-list %s: %s", f, exc)

    def save(self) -> None:
        f = self.file
        if f is None:
            return
        data: dict[str, Any] = {
            "repositories": sorted(self.repos),
            "ignored": [{"file": fi, "source": s, "lines": [a, b]} for fi, s, a, b in sorted(self.ignored)],
        }
        f.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so a crash never leaves a half-written file behind.
        fd, tmp = tempfile.mkstemp(dir=f.parent, prefix=".allowlist.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, f)

    def _rel(self, file: str) -> str:
        if self.root:
            try:
                return Path(file).resolve().relative_to(self.root.resolve()).as_posix()
            except (ValueError, OSError):
                pass
        return file

    def allow_repo(self, repo: str) -> None:
        self.repos.add(repo)
        self.save()

    def ignore(self, file: str, m: Match) -> None:
        self.ignored.add(self._key(file, m))
        self.save()

    def _key(self, file: str, m: Match) -> tuple[str, str, int, int]:
        return (self._rel(file), source_key(m), m.source_span.start_line, m.source_span.end_line)

    def hides(self, file: str | None, m: Match) -> bool:
        if m.source.repo and m.source.repo in self.repos:
            return True
        return file is not None and self._key(file, m) in self.ignored
