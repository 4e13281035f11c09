"""The binary payload of one postings chunk: columns of small integers, each stored as offsets
from the chunk's minimum in as few bytes as the range needs, decoded with numpy.

A chunk holds consecutive postings of one file, so its positions and lines span a few hundred
tokens and lines: 1 or 2 bytes each instead of 4. The key travels as its low 32 bits only. The
chunk was found through its full 64-bit keys (the indexed ``k``), so a row is only mistaken for
a query key's when another key of the same fetched chunk shares that key's low 32 bits (with
128 postings per chunk and 300 query keys, about once in 10^5 fetched chunks); such a row is one
more candidate hit that verification and chaining treat like any unrelated posting.

Layout: ``<qIB`` (file reference, rows, columns), per column ``<IB`` (minimum, bytes per value:
1, 2 or 4), then the columns one after the other.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError

from ..packed import concat_ranges

_HEAD = struct.Struct("<qIB")
_COL = struct.Struct("<IB")
_HEAD_DTYPE = np.dtype([("ref", "<i8"), ("n", "<u4"), ("k", "u1")])  # _HEAD and _COL, read in bulk
_COL_DTYPE = np.dtype([("base", "<u4"), ("width", "u1")])
_WIDTH: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}
LOW32 = np.uint64(0xFFFF_FFFF)


def encode(ref: int, columns: Sequence[np.ndarray]) -> bytes:
    """One chunk of file ``ref``: ``columns`` are equal-length arrays of values below 2**32."""
    n = len(columns[0])
    head = [_HEAD.pack(ref, n, len(columns))]
    body = []
    for col in columns:
        values = np.asarray(col, dtype=np.uint64)
        base = int(values.min()) if n else 0
        span = int(values.max()) - base if n else 0
        if base + span >= 1 << 32:
            raise ValueError("chunk columns hold 32-bit values")
        width = 1 if span < 1 << 8 else 2 if span < 1 << 16 else 4
        head.append(_COL.pack(base, width))
        body.append((values - np.uint64(base)).astype(_WIDTH[width]).tobytes())
    return b"".join(head + body)


def decode(
    blobs: Sequence[bytes], n_columns: int, first_in: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The rows of all ``blobs``: each row's file reference and the columns, as int64. With
    ``first_in`` (sorted int64), only the rows whose first column (the key) is one of its values."""
    refs, _, columns = decode_chunks(blobs, n_columns, first_in)
    return refs, columns


def decode_chunks(
    blobs: Sequence[bytes], n_columns: int, first_in: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """As `decode`, with which blob each row is from.

    Vectorised over the blobs: one gather of the headers, then one per column and byte width
    (a frombuffer per chunk and column took 0.85 ms a lookup, this 0.58 ms, on the 200 queries
    of bench_elastic.py's 24 MB store, 31 chunks a lookup on average; rows identical). A lookup
    keeps a few rows of the chunks it fetches (165-724 of 20-47 k on the slowest queries of
    that bench), so with ``first_in`` the other columns are read for those rows only."""
    empty = np.empty(0, dtype=np.int64)
    if not blobs:
        return empty, empty, [empty for _ in range(n_columns)]
    lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    at = _Layout(b"".join(blobs), lengths, n_columns)
    first = at.column(0)
    if first_in is None:
        blob = np.repeat(np.arange(len(lengths)), at.n)
        return at.refs[blob], blob, [first, *(at.column(c) for c in range(1, n_columns))]
    # Keys are mixed hashes, so their low 16 bits pick out the few candidate rows cheaply (one
    # table read a row: a searchsorted of every row took 2.4 ms of these lookups' 5).
    table = np.zeros(1 << 16, dtype=bool)
    table[first_in & 0xFFFF] = True
    candidates = np.flatnonzero(table[first & 0xFFFF])
    found = np.minimum(np.searchsorted(first_in, first[candidates]), max(len(first_in) - 1, 0))
    rows = candidates[first_in[found] == first[candidates]] if len(first_in) else empty
    blob = np.searchsorted(at.row_start, rows, side="right") - 1
    return at.refs[blob], blob, [first[rows], *(at.values_at(c, blob, rows) for c in range(1, n_columns))]


class _Layout:
    """Where each column of each blob lies in the blobs laid end to end (checked)."""

    def __init__(self, joined: bytes, lengths: np.ndarray, n_columns: int) -> None:
        head, col = _HEAD_DTYPE, _COL_DTYPE
        size = head.itemsize + n_columns * col.itemsize
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        buf = np.frombuffer(joined, dtype=np.uint8)
        if (lengths < head.itemsize).any():
            raise IndexCorruptError("a postings chunk is truncated: rebuild the store")
        heads = buf[starts[:, None] + np.arange(head.itemsize)].copy().view(head).ravel()
        if (heads["k"] != n_columns).any():
            k = int(heads["k"][heads["k"] != n_columns][0])
            raise IndexCorruptError(f"a postings chunk has {k} columns, not {n_columns}: rebuild the store")
        if (lengths < size).any():
            raise IndexCorruptError("a postings chunk is truncated: rebuild the store")
        cols = buf[starts[:, None] + head.itemsize + np.arange(n_columns * col.itemsize)]
        cols = cols.copy().view(col).reshape(len(lengths), n_columns)
        n = heads["n"].astype(np.int64)
        widths = cols["width"].astype(np.int64)
        if not np.isin(widths, list(_WIDTH)).all():
            raise IndexCorruptError("a postings chunk has an unknown column width: rebuild the store")
        # Column c of blob i starts after the header and the columns before it.
        offsets = (
            starts[:, None]
            + size
            + np.c_[np.zeros(len(lengths), dtype=np.int64), np.cumsum(n[:, None] * widths, axis=1)[:, :-1]]
        )
        if (offsets[:, -1] + n * widths[:, -1] > starts + lengths).any():
            raise IndexCorruptError("a postings chunk is truncated: rebuild the store")
        self.buf, self.refs, self.n, self.widths, self.offsets = buf, heads["ref"], n, widths, offsets
        self.bases = cols["base"].astype(np.int64)
        self.row_start = np.r_[0, np.cumsum(n)[:-1]]

    def _words(self, width: int) -> np.ndarray:
        """The buffer read as little-endian values of ``width`` bytes starting at every byte: a
        column is then gathered a value at a time, not a byte at a time."""
        count = max(len(self.buf) - width + 1, 0)
        return np.ndarray((count,), dtype=_WIDTH[width], buffer=self.buf, strides=(1,))

    def column(self, c: int) -> np.ndarray:
        """Column ``c`` of every row."""
        values = np.empty(int(self.n.sum()), dtype=np.int64)
        for width in _WIDTH:
            sel = np.flatnonzero(self.widths[:, c] == width)
            if not len(sel):
                continue
            counts = self.n[sel]
            rows = concat_ranges(self.row_start[sel], counts)
            shift = np.repeat(self.offsets[sel, c] - self.row_start[sel] * width, counts)
            values[rows] = self._words(width)[shift + rows * width] + np.repeat(self.bases[sel, c], counts)
        return values

    def values_at(self, c: int, blob: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Column ``c`` of the ``rows`` (global row numbers) of the blobs ``blob``."""
        width = self.widths[blob, c]
        at = self.offsets[blob, c] + (rows - self.row_start[blob]) * width
        values: np.ndarray = self.bases[blob, c].copy()
        for w in _WIDTH:
            sel = np.flatnonzero(width == w)
            if len(sel):
                values[sel] += self._words(w)[at[sel]]
        return values
