"""``skipped.jsonl`` beside an index's manifest: every file its builds skipped, by path and reason.

One JSON object per line, ``{"source", "path", "reason", "detail"}``. A build replaces the rows
of the sources it read and keeps the others, so the file describes the latest build of every
source. It is written whole, to a temporary file renamed over the old one under the index's
write lock: an interrupted build leaves the previous list. At most `MAX_ROWS` rows are kept;
a last row with reason ``not-listed`` then says how many more there were.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .skip import Skipped
from .writer import write_lock

SKIPPED = "skipped.jsonl"
MAX_ROWS = 100_000


def read_skip_list(index: Path) -> list[dict[str, Any]]:
    """The rows of ``index``'s skip list; a missing file is an empty list, a damaged line is
    left out (the list is a report, not part of the index's data)."""
    rows: list[dict[str, Any]] = []
    try:
        with (index / SKIPPED).open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("reason"), str):
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows


def _write(index: Path, rows: list[dict[str, Any]]) -> None:
    if len(rows) > MAX_ROWS:
        more = len(rows) - MAX_ROWS
        rows = [
            *rows[:MAX_ROWS],
            {"source": None, "path": None, "reason": "not-listed", "detail": f"{more:,} more"},
        ]
    tmp = index / f"{SKIPPED}.{os.getpid()}.tmp"
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, index / SKIPPED)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def update_skip_list(
    index: Path, sources: Iterable[str], skipped: Iterable[Skipped], unlisted: int = 0
) -> None:
    """Replace the rows of ``sources`` in ``index``'s skip list with ``skipped``."""
    read = set(sources)
    with write_lock(index):
        kept = [r for r in read_skip_list(index) if r.get("source") is not None and r["source"] not in read]
        rows = kept + [asdict(s) for s in skipped]
        if unlisted:
            rows.append(
                {"source": None, "path": None, "reason": "not-listed", "detail": f"{unlisted:,} more"}
            )
        _write(index, rows)


def merge_skip_lists(index: Path, parts: Iterable[Path]) -> None:
    """Add the skip lists of the indexes ``parts`` (merged into ``index``) to its own."""
    with write_lock(index):
        rows = read_skip_list(index)
        seen = {(r.get("source"), r.get("path"), r["reason"]) for r in rows}
        for part in parts:
            for r in read_skip_list(part):
                if (r.get("source"), r.get("path"), r["reason"]) not in seen:
                    seen.add((r.get("source"), r.get("path"), r["reason"]))
                    rows.append(r)
        _write(index, rows)
