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

import binascii
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
# The key column's bytes at most (128 postings, 4 bytes each) that `decode_texts` decodes with
# the headers; a chunk whose key column reaches further is decoded whole.
_KEY_BYTES = 128 * 4
_B64 = np.zeros(256, dtype=np.int64)  # base64 character -> its 6 bits
_B64[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)] = (
    np.arange(64)
)
# Byte j of a base64 text is in the characters 4 (j // 3) + j % 3 and the one after: its high
# bits are the first's low bits, shifted up, its low bits the second's high bits.
_B64_MASK, _B64_UP, _B64_DOWN = np.array([63, 15, 3]), np.array([2, 4, 6]), np.array([4, 2, 0])


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


def decode(blobs: Sequence[bytes], n_columns: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every row of ``blobs``: each row's file reference and the columns, as int64."""
    refs, _, columns = decode_chunks(blobs, n_columns)
    return refs, columns


def decode_chunks(blobs: Sequence[bytes], n_columns: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """As `decode`, with which blob each row is from. Vectorised over the blobs: one gather of
    the headers, then one per column and byte width. A lookup decodes the base64 texts
    Elasticsearch returns, and only the rows it keeps (`decode_texts`)."""
    empty = np.empty(0, dtype=np.int64)
    if not blobs:
        return empty, empty, [empty for _ in range(n_columns)]
    at = _layout(blobs, n_columns)
    blob = np.repeat(np.arange(len(blobs)), at.n)
    return at.refs[blob], blob, [at.column(c) for c in range(n_columns)]


def _layout(blobs: Sequence[bytes], n_columns: int, sizes: np.ndarray | None = None) -> _Layout:
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    return _Layout(b"".join(blobs), lengths, n_columns, sizes)


def decode_texts(
    texts: Sequence[str], n_columns: int, first_in: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """As `decode_chunks` of the chunks ``texts`` encode in base64 (as Elasticsearch returns
    binary doc values), for the rows whose first column (the key) is one of ``first_in`` (sorted
    int64) only, decoding only what it reads: the headers and the key column of each text, and
    of the other columns the values of the rows kept, from the text's characters. A lookup
    keeps 1-5 % of the rows it fetches (165-724 of 20-47 k on bench_elastic's slowest
    queries), and the other columns are 40-60 % of a chunk: on the 6 slowest queries of
    bench_elastic's 24 MB store (168-385 chunks) decoding took 12.4-13.7 instead of 14.6-17.6
    ms summed, a2b_base64 of the 385-chunk response 0.9-1.4 instead of 1.8-2.6 ms."""
    empty = np.empty(0, dtype=np.int64)
    if not texts:
        return empty, empty, [empty for _ in range(n_columns)]
    head = _HEAD.size + n_columns * _COL.size
    prefix = 4 * -(-(head + _KEY_BYTES) // 3)  # characters: whole groups of 4
    chars = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8)
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    starts = ends - np.diff(ends, prepend=0)
    # Bytes a text encodes: 3 for 4 characters, less the padding ("=") at its end.
    sizes = (
        (ends - starts) // 4 * 3
        - (chars[np.maximum(ends - 1, 0)] == 61)
        - (chars[np.maximum(ends - 2, 0)] == 61)
    )
    blobs = [binascii.a2b_base64(t[:prefix]) for t in texts]
    at = _layout(blobs, n_columns, sizes)
    short = np.flatnonzero(at.local[:, 0] + at.n * at.widths[:, 0] > at.lengths)
    if len(short):  # a key column past the prefix (a chunk of more than 128 postings): decoded whole
        for i in short.tolist():
            blobs[i] = binascii.a2b_base64(texts[i])
        at = _layout(blobs, n_columns, sizes)
    first = at.column(0)
    rows = _wanted_rows(first, first_in)
    blob = np.searchsorted(at.row_start, rows, side="right") - 1
    # Every byte of the other columns' values of those rows, (row, column, byte), in one pass;
    # the bytes past a value's width are read as its first and weigh nothing.
    width = at.widths[blob, 1:]
    local = at.local[blob, 1:] + (rows - at.row_start[blob])[:, None] * width
    k = np.arange(4)
    used = k < width[:, :, None]
    j = local[:, :, None] + k * used  # byte j of its blob
    group = j // 3
    r = j - 3 * group
    i = starts[blob][:, None, None] + 4 * group + r
    byte = ((_B64[chars[i]] & _B64_MASK[r]) << _B64_UP[r]) | (_B64[chars[i + 1]] >> _B64_DOWN[r])
    values = at.bases[blob, 1:] + ((byte * used) << (8 * k)).sum(axis=2)
    cols = [first[rows], *values.T]
    return at.refs[blob], blob, cols


def _wanted_rows(first: np.ndarray, first_in: np.ndarray) -> np.ndarray:
    """The rows whose first column is one of ``first_in`` (sorted). Keys are mixed hashes, so
    their low 16 bits pick out the few candidate rows cheaply (one table read a row: a
    searchsorted of every row took 2.4 ms of these lookups' 5)."""
    if not len(first_in):
        return np.empty(0, dtype=np.int64)
    table = np.zeros(1 << 16, dtype=bool)
    table[first_in & 0xFFFF] = True
    candidates = np.flatnonzero(table[first & 0xFFFF])
    found = np.minimum(np.searchsorted(first_in, first[candidates]), len(first_in) - 1)
    rows: np.ndarray = candidates[first_in[found] == first[candidates]]
    return rows


class _Layout:
    """Where each column of each blob lies in the blobs laid end to end (checked). With
    ``sizes``, the blobs are the first ``lengths`` bytes of blobs of that size (`decode_texts`)."""

    def __init__(
        self, joined: bytes, lengths: np.ndarray, n_columns: int, sizes: np.ndarray | None = None
    ) -> None:
        head, col = _HEAD_DTYPE, _COL_DTYPE
        size = head.itemsize + n_columns * col.itemsize
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        buf = np.frombuffer(joined, dtype=np.uint8)
        total = lengths if sizes is None else sizes
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
        local = (
            size
            + np.c_[np.zeros(len(lengths), dtype=np.int64), np.cumsum(n[:, None] * widths, axis=1)[:, :-1]]
        )
        if (local[:, -1] + n * widths[:, -1] > total).any():
            raise IndexCorruptError("a postings chunk is truncated: rebuild the store")
        self.buf, self.refs, self.n, self.widths, self.lengths = buf, heads["ref"], n, widths, lengths
        self.local, self.offsets = local, starts[:, None] + local
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
