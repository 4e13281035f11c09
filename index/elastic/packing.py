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

_HEAD = struct.Struct("<qIB")
_COL = struct.Struct("<IB")
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


def decode(blobs: Sequence[bytes], n_columns: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The rows of all ``blobs``: each row's file reference and the columns, as int64."""
    refs: list[np.ndarray] = []
    cols: list[list[np.ndarray]] = [[] for _ in range(n_columns)]
    for blob in blobs:
        ref, n, k = _HEAD.unpack_from(blob)
        if k != n_columns:
            msg = f"a postings chunk has {k} columns, not {n_columns}: rebuild the store"
            raise IndexCorruptError(msg)
        at = _HEAD.size + k * _COL.size
        for c in range(k):
            base, width = _COL.unpack_from(blob, _HEAD.size + c * _COL.size)
            values = np.frombuffer(blob, dtype=_WIDTH[width], count=n, offset=at)
            cols[c].append(values.astype(np.int64) + base)
            at += n * width
        refs.append(np.full(n, ref, dtype=np.int64))
    if not blobs:
        return np.empty(0, dtype=np.int64), [np.empty(0, dtype=np.int64) for _ in range(n_columns)]
    return np.concatenate(refs), [np.concatenate(c) for c in cols]
