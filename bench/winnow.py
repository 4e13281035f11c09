"""A Moss-style baseline: character-level winnowing that keeps comments (Schleimer, Wilkerson and
Aiken, SIGMOD 2003), measured beside stacklens in the same run.

Whitespace is removed (comments and strings stay), every K-character gram is hashed, and the
minimum hash of each window of W consecutive grams is kept as a fingerprint, so any copy of at
least W + K - 1 non-whitespace characters shares a fingerprint. A query is attributed to the
file that shares the most distinct fingerprints with it, when there are at least MIN_SHARED; the
located span runs from the first to the last shared fingerprint.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

K, W, MIN_SHARED = 40, 20, 3
# Fingerprints in more files than this are boilerplate; Moss drops them too.
MAX_FILES = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)


def fingerprints(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, start offsets, end offsets) in ``text`` of the winnowed K-grams."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    keep = np.flatnonzero(~np.isin(codes, (9, 10, 11, 12, 13, 32)))
    chars = codes[keep].astype(np.uint64)
    n = len(chars) - K + 1
    if n <= 0:
        empty = np.zeros(0, np.uint64)
        return empty, empty.astype(np.int64), empty.astype(np.int64)
    h = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(K):
            h = h * np.uint64(1_000_003) + chars[j : j + n]
        h = (h ^ (h >> np.uint64(31))) * _MIX
    if n >= W:
        picks = np.unique(np.argmin(sliding_window_view(h, W), axis=1) + np.arange(n - W + 1))
    else:
        picks = np.array([int(np.argmin(h))])
    return h[picks], keep[picks], keep[picks + K - 1] + 1


class Winnow:
    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._docs: list[np.ndarray] = []
        self.names: list[str] = []
        self.h = np.zeros(0, np.uint64)
        self.d = np.zeros(0, np.int32)

    def add(self, name: str, text: str) -> None:
        hashes = np.unique(fingerprints(text)[0])
        self._hashes.append(hashes)
        self._docs.append(np.full(len(hashes), len(self.names), np.int32))
        self.names.append(name)

    def freeze(self) -> None:
        h = np.concatenate(self._hashes)
        d = np.concatenate(self._docs)
        order = np.argsort(h, kind="stable")
        self.h, self.d = h[order], d[order]
        self._hashes, self._docs = [], []

    def query(self, text: str) -> tuple[list[str], tuple[int, int] | None]:
        """The best-supported files (ties included) and the query span they cover; ([], None)
        below MIN_SHARED shared fingerprints."""
        qh, qstart, qend = fingerprints(text)
        lo = np.searchsorted(self.h, qh, "left")
        hi = np.searchsorted(self.h, qh, "right")
        counts = hi - lo
        use = (counts > 0) & (counts <= MAX_FILES)
        if not use.any():
            return [], None
        rows = np.repeat(np.flatnonzero(use), counts[use])
        offsets = np.arange(len(rows)) - np.repeat(np.cumsum(counts[use]) - counts[use], counts[use])
        docs = self.d[np.repeat(lo[use], counts[use]) + offsets]
        pairs = np.unique(np.stack([docs.astype(np.int64), qh[rows].view(np.int64)]), axis=1)
        ids, shared = np.unique(pairs[0], return_counts=True)
        best = int(shared.max())
        if best < MIN_SHARED:
            return [], None
        top = ids[shared == best]
        hit = rows[docs == top[0]]
        return [self.names[i] for i in top], (int(qstart[hit].min()), int(qend[hit].max()))
