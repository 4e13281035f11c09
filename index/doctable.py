"""A segment's document table: JSON records compressed in blocks of BLOCK_DOCS.

Records of one corpus repeat their field names, repository, licence and path prefixes, so a
block of 64 compresses about 4x with zlib (a record alone: 1.5x); reading one document
decompresses its block as far as its record (`_Prefix`), and the last blocks read are kept.

A query reads a few documents, each most likely in a block no query read lately, and decoding
costs by the byte: blocks of 16 records take a cold read from 60 to 28 us (400 random documents
of the gigabyte index, best of 7, loaded machine) for 15 % more table (3.88 -> 4.44 MB at 1 GB,
0.2 % of the index). The block size is recorded in ``segment.json`` (``doc_block``); a segment
that records none was written in blocks of `LEGACY_BLOCK_DOCS`.
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
BLOCK_DOCS = 16
LEGACY_BLOCK_DOCS = 64
_MAX_BLOCK_DOCS = 1 << 16
_CACHED_DOCS = 4096  # the records of the last blocks read, whatever their size


def _encode(block: list[dict[str, Any]]) -> bytes:
    lines = b"".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for d in block)
    return zlib.compress(lines, 6)


def write_doc_table(directory: Path, docs: Iterable[dict[str, Any]], block_docs: int) -> int:
    """Write ``docs`` into ``directory`` in blocks of ``block_docs``; returns how many there are."""
    offsets, n, block = [0], 0, []
    with (directory / DOCS_FILE).open("wb") as f:
        for doc in docs:
            block.append(doc)
            n += 1
            if len(block) == block_docs:
                f.write(_encode(block))
                offsets.append(f.tell())
                block = []
        if block:
            f.write(_encode(block))
            offsets.append(f.tell())
    np.save(directory / OFFSETS_FILE, np.asarray(offsets, dtype=np.uint64))
    return n


class _Prefix:
    """The records of one block decoded so far: a document's record is decoded with those
    before it in its block only, not the whole block (decompression costs by the byte decoded:
    a gigabyte block of 16 KB 66 us, its first 4 KB 24; a query reports up to ten documents,
    most in a block it has not read)."""

    def __init__(self, raw: bytes, expected: int) -> None:
        self.lines: list[bytes] = []
        self._tail = b""  # the start of the record after the last one decoded
        self._inflate: zlib._Decompress | None = zlib.decompressobj()
        self._rest, self._expected, self._decoded = raw, expected, 0

    @property
    def done(self) -> bool:
        return self._inflate is None

    @property
    def record_bytes(self) -> int:
        return max(64, self._decoded // max(len(self.lines), 1))

    def record(self, r: int, record_bytes: int) -> bytes:
        """Record ``r`` of the block, decoding on as far as it (about ``record_bytes`` a
        record); ``ValueError`` when the block is damaged."""
        while len(self.lines) <= r and self._inflate is not None:
            want = (r + 1 - len(self.lines)) * record_bytes * 5 // 4 + 256
            try:
                chunk = self._inflate.decompress(self._rest, want)
            except zlib.error as exc:
                raise ValueError(f"a block does not decompress ({exc})") from None
            self._rest, self._decoded = self._inflate.unconsumed_tail, self._decoded + len(chunk)
            *whole, self._tail = (self._tail + chunk).split(b"\n")
            self.lines += whole
            if self._inflate.eof:
                if self._tail or self._inflate.unused_data:
                    raise ValueError("a block has bytes after its last record")
                self._inflate = None
            elif not chunk and not self._rest:
                raise ValueError("a block ends early")
            if len(self.lines) > self._expected:
                raise ValueError(f"a block holds more than {self._expected} records")
        if len(self.lines) <= r or (self.done and len(self.lines) != self._expected):
            raise ValueError(f"a block holds {len(self.lines)} records, {self._expected} expected")
        return self.lines[r]


class DocTable:
    """Read side; ``doc`` may be called from several threads. ``block_docs`` is the block size
    the table was written with."""

    def __init__(self, directory: Path, n: int, block_docs: int) -> None:
        self.path = directory / DOCS_FILE
        self.n = n
        if not 1 <= block_docs <= _MAX_BLOCK_DOCS:
            raise IndexCorruptError(
                f"the document table of {directory} has blocks of {block_docs} records; rebuild the index"
            )
        self.block_docs = block_docs
        self._cached_blocks = max(1, _CACHED_DOCS // block_docs)
        try:
            self.offsets = np.load(directory / OFFSETS_FILE, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read {directory / OFFSETS_FILE}: {exc}; rebuild the index"
            ) from exc
        if len(self.offsets) != (n + block_docs - 1) // block_docs + 1:
            raise IndexCorruptError(f"the document table of {directory} is inconsistent; rebuild the index")
        self._file = self.path.open("rb")
        self._cache: OrderedDict[int, _Prefix] = OrderedDict()
        self._lock = threading.Lock()
        self._record_bytes = 256  # a record's decoded size, as the last block read had them

    def _raw(self, b: int) -> bytes:
        start, end = int(self.offsets[b]), int(self.offsets[b + 1])
        # pread: no shared file position, so threads can read documents concurrently.
        return os.pread(self._file.fileno(), end - start, start)

    def _block(self, b: int) -> list[bytes]:
        """The records of block ``b``; ``ValueError`` when it is damaged."""
        try:
            lines = zlib.decompress(self._raw(b)).split(b"\n")[:-1]
        except zlib.error as exc:
            raise ValueError(f"block {b} does not decompress ({exc})") from None
        expected = min(self.block_docs, self.n - b * self.block_docs)
        if len(lines) != expected:
            raise ValueError(f"block {b} holds {len(lines)} records, {expected} expected")
        return lines

    def doc(self, i: int) -> dict[str, Any]:
        size = self.block_docs
        b = i // size
        with self._lock:
            block = self._cache.get(b)
            if block is None:
                block = self._cache[b] = _Prefix(self._raw(b), min(size, self.n - b * size))
                if len(self._cache) > self._cached_blocks:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(b)
            try:
                line = block.record(i % size, self._record_bytes)
            except ValueError as exc:
                del self._cache[b]
                raise IndexCorruptError(
                    f"the document table {self.path} is damaged (block {b}: {exc}); rebuild the index"
                ) from exc
            self._record_bytes = block.record_bytes
        try:
            return dict(json.loads(line))
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
