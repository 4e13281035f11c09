"""Merging an embedded index's segments (and other indexes) into one, reading document tables
defensively, and the messages of failed index writes (a full disk above all)."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import DiskFullError, IndexCorruptError, InputError, StacklensError

from .content import compact_content
from .merge import MergeInput, merged_table
from .segment import FIELDS, Segment, doc_starts
from .skiplist import merge_skip_lists
from .store import EmbeddedIndex
from .writer import IndexWriter


def segment_documents(seg: Segment) -> Iterator[tuple[int, dict[str, Any]]]:
    """(local id, record) of every document of ``seg``, deleted ones included; a damaged
    document table (bytes changed in place: the sizes checked on open still match) is an
    `IndexCorruptError`, not a ``KeyError`` or ``UnicodeDecodeError`` halfway through a build."""
    n = 0
    try:
        for n, doc in enumerate(seg.iter_docs(), 1):
            if not (
                isinstance(doc, dict) and isinstance(doc.get("key"), str) and isinstance(doc.get("sha"), str)
            ):
                raise ValueError(f"record {n} has no key and hash")
            yield n - 1, doc
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _damaged_docs(seg, str(exc)) from None
    if n != seg.num_docs:
        raise _damaged_docs(seg, f"{n} records, the segment lists {seg.num_docs}")


def _damaged_docs(seg: Segment, what: str) -> IndexCorruptError:
    index = seg.directory.parent
    return IndexCorruptError(
        f"the document table {seg.docs_path} is damaged ({what}); "
        f"`code-search verify --index {index}` lists the damaged files: rebuild the index"
    )


# A short write to a regular file (numpy reports it without an errno) means the same.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failure(exc: OSError, path: Path) -> StacklensError:
    """The error to show for ``exc``, raised while writing the index at ``path``."""
    if exc.errno in _NO_SPACE or (exc.errno is None and "written" in str(exc)):
        what = os.strerror(exc.errno) if exc.errno else f"a write stopped short: {exc}"
        return DiskFullError(
            f"disk full: cannot write the index at {path} ({what}); free some space "
            "or build into a path on another disk. The index keeps everything committed before, "
            "and the partly written files were removed"
        )
    return StacklensError(
        f"cannot write the index at {path}: {exc.strerror or exc}; check that the path is writable"
    )


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise write_failure(exc, path) from exc


def compact_index(path: str | Path, parts: Iterable[str | Path] = ()) -> int:
    """Merge all segments of ``path`` (and of the indexes ``parts``) into one; returns docs kept."""
    with writing(Path(path)):
        return _compact(Path(path), parts)


def _compact(path: Path, parts: Iterable[str | Path]) -> int:
    parts = list(parts)
    writer = IndexWriter(path)
    sources = [EmbeddedIndex(path), *(EmbeddedIndex(p) for p in parts)]
    try:
        for other in sources[1:]:
            if other.params != writer.params:
                raise InputError(f"cannot merge {other.path}: built with other fingerprint parameters")
        for other in sources[1:]:
            if other.key_bits != writer.key_bits:
                raise InputError(f"cannot merge {other.path}: its keys have {other.key_bits} bits")
        docs: list[dict[str, Any]] = []
        kept: list[tuple[Segment, np.ndarray]] = []  # each segment's kept documents, in order
        inputs: dict[str, list[MergeInput]] = {name: [] for name in FIELDS}
        seen: set[str] = set()
        for idx in sources:
            for seg in idx.segments:
                remap = np.full(seg.num_docs, -1, dtype=np.int64)
                for i, doc in segment_documents(seg):
                    if i in seg.deleted or doc["key"] in seen:
                        continue
                    seen.add(doc["key"])
                    remap[i] = len(docs)
                    docs.append(doc)
                kept.append((seg, np.flatnonzero(remap >= 0)))
                inputs["fp"].append(MergeInput(seg.fp, remap, seg.starts))
                inputs["mh"].append(MergeInput(seg.mh, remap, seg.starts))
        replace = [seg.name for seg in sources[0].segments]
        tokens = np.concatenate([np.diff(seg.starts)[ids] for seg, ids in kept] or [np.empty(0, np.int64)])
        starts = doc_starts(tokens)
        # Line table records stream from the inputs as the segment is written (a few hundred
        # bytes a document: a list of them would grow with the index).
        lines = (seg.lines.blob(int(i)) for seg, ids in kept for i in ids)
        writer.commit_segment(
            {name: merged_table(name, inputs[name], starts) for name in FIELDS},
            docs=docs,
            lines=lines,
            starts=starts,
            replace=replace,
        )
    finally:
        for idx in sources:
            idx.close()
    compact_content(path, (d["sha"] for d in docs), [Path(p) for p in parts])  # the text kept
    if parts:
        merge_skip_lists(path, [Path(p) for p in parts])
    return len(docs)
