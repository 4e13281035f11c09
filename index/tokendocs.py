"""The document of each token number of a segment, from a table of every few token numbers'.

A posting stores one segment-wide token number ("at"); its document is the last one whose first
token number is at most it. Bisecting the documents' first token numbers (65,760 at 1 GB) cost
260 us for the 1,500 postings of a query (numpy's searchsorted, branch misses at every step of
17), a fifth of a lookup. Here a table holds the document of every ``2^shift``-th token number,
with ``2^shift`` about half a document's mean length, so a token number's document is the one of
the grid point at or below it, stepped on past the documents that start between the two: 45 us
for the same postings, 11 bytes of memory a document.
"""

from __future__ import annotations

import numpy as np

_STEPS = 2  # steps on from the grid's document; the postings still short of theirs are bisected


class TokenDocs:
    """Documents of token numbers, for each document's first token number ``starts`` (int64,
    ascending, the total at the end: `index.segment.doc_starts`)."""

    def __init__(self, starts: np.ndarray) -> None:
        self.starts = starts
        docs = len(starts) - 1
        total = int(starts[-1]) if len(starts) else 0
        mean = total // max(docs, 1)
        self.shift = max(mean.bit_length() - 2, 0)  # 2^shift in (mean / 4, mean / 2]
        # The document holding grid point j << shift: those starting at or before it, less one
        # (a grid point past the last token, the last document's: its number stays in range).
        first_cell = (starts[:-1] + ((1 << self.shift) - 1)) >> self.shift
        cells = (total >> self.shift) + 1
        counts = np.bincount(first_cell, minlength=cells)[:cells]
        dtype = np.int32 if docs < 2**31 else np.int64
        self._grid: np.ndarray = np.maximum(np.cumsum(counts) - 1, 0).astype(dtype)

    def of(self, at: np.ndarray) -> np.ndarray:
        """Document (int64) of each token number ``at`` (each below the total)."""
        at = np.asarray(at, dtype=np.int64)
        starts = self.starts
        doc: np.ndarray = self._grid[at >> self.shift].astype(np.int64)
        for _ in range(_STEPS):
            doc += starts[doc + 1] <= at
        short = (starts[doc + 1] <= at).nonzero()[0]
        if len(short):  # a run of documents shorter than a grid step (rare)
            doc[short] = np.searchsorted(starts, at[short], side="right") - 1
        return doc
