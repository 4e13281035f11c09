"""Dataset sources: JSONL(.gz) and Parquet files whose rows carry ``content`` and optionally The
Stack's metadata. A row is what a model was trained on: it is never dropped for its content."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from stacklens.errors import InputError

from .config import BuildLimits
from .names import display_name
from .normalize import language_for
from .skip import SkipStats, SourceFile, row_text


def _text_field(value: object) -> str | None:
    return display_name(str(value)) if value else None


def _stack_row(
    row: dict[str, object], where: str, n: int, limits: BuildLimits, stats: SkipStats
) -> SourceFile | None:
    """A dataset row as a source file: never dropped for its content (index/skip.py)."""
    content = row.get("content")
    path = _text_field(row.get("max_stars_repo_path") or row.get("path"))
    row_name = f"#{n}" + (f" {path}" if path else "")
    if not isinstance(content, str):
        stats.skip("no-content", where, row_name, "no `content` string")
        return None
    text, reason, detail = row_text(content, limits)
    if text is None:
        stats.skip(reason, where, row_name, detail)
        return None
    repo = _text_field(row.get("max_stars_repo_name") or row.get("repo_name") or row.get("repository"))
    path = path or f"row-{n}"
    licenses = row.get("max_stars_repo_licenses") or row.get("license")
    if isinstance(licenses, (list, tuple)):
        license_ = ", ".join(display_name(str(x)) for x in licenses) or None
    else:
        license_ = _text_field(licenses)
    url = _text_field(row.get("url"))
    if not url and repo:
        url = f"https://github.com/{repo}/blob/HEAD/{path}"
    lang = row.get("lang") or row.get("language")
    key = row.get("hexsha") or row.get("id") or (f"{repo}::{path}" if repo else f"{where}#{n}")
    return SourceFile(
        key=display_name(str(key)),
        text=text,
        path=path,
        repo=repo,
        license=license_,
        url=url,
        lang=language_for(path, str(lang) if lang else None),
        source=where,
    )


@dataclass
class JsonlSource:
    path: Path
    limits: BuildLimits
    store_content: bool = True  # a dataset row has no file to read its text back from

    def __post_init__(self) -> None:
        self.name = display_name(str(self.path))

    # A dataset's rows are its documents as given: a build adds and updates, never prunes.
    prune_prefix: ClassVar[str | None] = None

    def files(self, stats: SkipStats) -> Iterator[SourceFile]:
        opener = gzip.open if self.path.name.endswith(".gz") else open
        try:
            with opener(self.path, "rt", encoding="utf-8", errors="surrogateescape") as f:
                for n, line in enumerate(f):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        row = None
                    if not isinstance(row, dict):
                        stats.skip("malformed-row", self.name, f"#{n}", f"line {n + 1} is not a JSON object")
                        continue
                    doc = _stack_row(row, self.name, n, self.limits, stats)
                    if doc is not None:
                        doc.store_content = self.store_content
                        yield doc
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read {self.name}: {exc}") from exc


@dataclass
class ParquetSource:
    path: Path
    limits: BuildLimits
    store_content: bool = True

    def __post_init__(self) -> None:
        self.name = display_name(str(self.path))

    # A dataset's rows are its documents as given: a build adds and updates, never prunes.
    prune_prefix: ClassVar[str | None] = None

    def files(self, stats: SkipStats) -> Iterator[SourceFile]:
        import pyarrow.parquet as pq  # heavy; only parquet builds pay for it

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise InputError(f"cannot read Parquet file {self.name}: {exc}") from exc
        if "content" not in pf.schema_arrow.names:
            raise InputError(f"{self.name} has no `content` column (columns: {pf.schema_arrow.names})")
        n = 0
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                doc = _stack_row(row, self.name, n, self.limits, stats)
                n += 1
                if doc is not None:
                    doc.store_content = self.store_content
                    yield doc
