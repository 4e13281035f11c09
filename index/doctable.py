"""A segment's document table: JSON records compressed in blocks of BLOCK_DOCS.

Records of one corpus repeat their field names, repository, licence and path prefixes, so a
block of 64 compresses about 4x with zlib (a record alone: 1.5x); reading one document
decompresses its block (~10 KB, ~30 us), and the last blocks read are kept.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError

DOCS_FILE = "docs.z"
OFFSETS_FILE = "docs_off.npy"
BLOCK_DOCS = 64
_CACHED_BLOCKS = 64


def _encode(block: list[dict[str, Any]]) -> bytes:
    lines = b"".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for d in block)
    return zlib.compress(lines, 6)


def write_doc_table(directory: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Write ``docs`` into ``directory``; returns how many there are."""
    offsets, n, block = [0], 0, []
    with (directory / DOCS_FILE).open("wb") as f:
        for doc in docs:
            block.append(doc)
            n += 1
            if len(block) == BLOCK_DOCS:
                f.write(_encode(block))
                offsets.append(f.tell())
                block = []
        if block:
            f.write(_encode(block))
            offsets.append(f.tell())
    np.save(directory / OFFSETS_FILE, np.asarray(offsets, dtype=np.uint64))
    return n


class DocTable:
    """Read side; ``doc`` may be called from several threads."""

    def __init__(self, directory: Path, n: int) -> None:
        self.path = directory / DOCS_FILE
        self.n = n
        try:
            self.offsets = np.load(directory / OFFSETS_FILE, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read {directory / OFFSETS_FILE}: {exc}; rebuild the index"
            ) from exc
        if len(self.offsets) != (n + BLOCK_DOCS - 1) // BLOCK_DOCS + 1:
            raise IndexCorruptError(f"the document table of {directory} is inconsistent; rebuild the index")
        self._file = self.path.open("rb")
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def _block(self, b: int) -> list[bytes]:
        """The records of block ``b``; ``ValueError`` when it is damaged."""
        start, end = int(self.offsets[b]), int(self.offsets[b + 1])
        # pread: no shared file position, so threads can read documents concurrently.
        raw = os.pread(self._file.fileno(), end - start, start)
        try:
            lines = zlib.decompress(raw).split(b"\n")[:-1]
        except zlib.error as exc:
            raise ValueError(f"block {b} does not decompress ({exc})") from None
        expected = min(BLOCK_DOCS, self.n - b * BLOCK_DOCS)
        if len(lines) != expected:
            raise ValueError(f"block {b} holds {len(lines)} records, {expected} expected")
        return lines

    def doc(self, i: int) -> dict[str, Any]:
        b = i // BLOCK_DOCS
        with self._lock:
            lines = self._cache.get(b)
            if lines is not None:
                self._cache.move_to_end(b)
        try:
            if lines is None:
                lines = self._block(b)
                with self._lock:
                    self._cache[b] = lines
                    if len(self._cache) > _CACHED_BLOCKS:
                        self._cache.popitem(last=False)
            return dict(json.loads(lines[i % BLOCK_DOCS]))
        except ValueError as exc:
            raise IndexCorruptError(
                f"the document table {self.path} is damaged ({exc}); rebuild the index"
            ) from exc

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every record in order; ``ValueError`` (or `json.JSONDecodeError`) where damaged."""
        for b in range(len(self.offsets) - 1):
            for line in self._block(b):
                yield json.loads(line)

    def close(self) -> None:
        self._file.close()
