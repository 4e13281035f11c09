"""Ordering and thinning a query's hits, in numpy and without multi-key sorts.

``np.lexsort`` over three int64 keys costs 0.5 ms for 3,000 hits and 9 ms for 34,000 (the
completed postings of a file that repeats a k-gram hundreds of times); one ``np.sort`` of the
keys packed into a uint64 with the index below them costs 0.02 and 0.2 ms (measured on this
machine, numpy 2.4, AVX-512), and gives the same order.
"""

from __future__ import annotations

import numpy as np


def lexorder(*keys: np.ndarray) -> np.ndarray:
    """The stable order by ``keys[0]``, then ``keys[1]``, ...: ``np.lexsort(keys[::-1])``.

    The keys (integers) are offset to start at 0 and packed, most significant first, above the
    index, which breaks ties as a stable sort does; keys too wide for 64 bits together fall
    back to ``np.lexsort``."""
    n = len(keys[0])
    if n == 0:
        return np.empty(0, dtype=np.intp)
    low = [int(k.min()) for k in keys]
    widths = [(int(k.max()) - lo).bit_length() for k, lo in zip(keys, low, strict=True)]
    index_bits = (n - 1).bit_length()
    if sum(widths) + index_bits > 64:
        return np.lexsort(keys[::-1])
    packed = np.zeros(n, dtype=np.uint64)
    for k, lo, width in zip(keys, low, widths, strict=True):
        packed = (packed << np.uint64(width)) | (k - lo).astype(np.uint64)
    packed = (packed << np.uint64(index_bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order: np.ndarray = (packed & np.uint64((1 << index_bits) - 1)).astype(np.intp)
    return order


def _median_diagonals(doc_start: np.ndarray, doc_end: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """Per document ``[doc_start, doc_end)`` of ``diag``, its ``len // 2``-th smallest value."""
    sizes = doc_end - doc_start
    at = (doc_start - sizes.cumsum() + sizes).repeat(sizes) + np.arange(int(sizes.sum()))
    lo = int(diag.min())
    width = (int(diag.max()) - lo).bit_length()
    packed = (np.arange(len(sizes), dtype=np.uint64).repeat(sizes) << np.uint64(width)) | (
        diag[at] - lo
    ).astype(np.uint64)
    packed.sort()
    mid = sizes.cumsum() - sizes + sizes // 2
    median: np.ndarray = (packed[mid] & np.uint64((1 << width) - 1)).astype(np.int64) + lo
    return median


def nearest_repeats(
    order: np.ndarray, doc: np.ndarray, qi: np.ndarray, pos: np.ndarray, most: int
) -> np.ndarray:
    """``order`` (hits sorted by document, query position, source position, no two alike) with
    at most ``most`` source positions per document and query k-gram: those nearest the
    document's median diagonal (its ``len // 2``-th smallest ``pos - qi``), the earlier of two
    as near. A k-gram repeated all over one file (tables, interface lists, generated code) can
    only support so many chains, and keeping a few keeps chaining linear; the first few in the
    file put a copy of its last part on the wrong diagonal.

    Within one (document, k-gram) run the positions ascend, so the nearest few to a diagonal
    are a window around where it falls: found by stepping out from there ``most`` times, for
    all runs at once, instead of sorting by distance."""
    d, q, p = doc[order], qi[order], pos[order]
    n = len(order)
    first = np.concatenate(([True], (d[1:] != d[:-1]) | (q[1:] != q[:-1])))
    starts = first.nonzero()[0]
    ends = np.concatenate((starts[1:], [n]))
    long = (ends - starts > most).nonzero()[0]
    if len(long) == 0:
        return order
    doc_start = np.concatenate(([True], d[1:] != d[:-1])).nonzero()[0]
    doc_end = np.concatenate((doc_start[1:], [n]))
    run_doc = np.searchsorted(doc_start, starts[long], side="right") - 1
    # Its documents, and which of them each run is in: the runs come in document order, so
    # as np.unique's (sorted, and its inverse) without its sort.
    new = np.concatenate(([True], run_doc[1:] != run_doc[:-1]))
    wanted, run_doc = run_doc[new], new.cumsum() - 1
    median = _median_diagonals(doc_start[wanted], doc_end[wanted], p - q)
    s, e = starts[long], ends[long]
    target = q[s] + median[run_doc]  # the source position on the median diagonal
    # First position of each run at or after its target: one search over (run, position),
    # which ``order`` sorts.
    run_of = first.cumsum() - 1
    cap = (int(p.max()) + 1).bit_length()
    key = (run_of.astype(np.uint64) << np.uint64(cap)) | p.astype(np.uint64)
    clipped = np.minimum(np.maximum(target, 0), (1 << cap) - 1)  # np.clip, without its overhead
    wanted_key = (long.astype(np.uint64) << np.uint64(cap)) | clipped.astype(np.uint64)
    right = np.searchsorted(key, wanted_key, side="left")
    left = right - 1
    for _ in range(most):
        has_left, has_right = left >= s, right < e
        to_left = has_left & (
            ~has_right | (target - p[np.maximum(left, 0)] <= p[np.minimum(right, n - 1)] - target)
        )
        left = np.where(to_left, left - 1, left)
        right = np.where(to_left, right, right + 1)
    # Drop each long run but its window [left + 1, right): -1 over [s, e), +1 over the window.
    m = len(s)
    delta = np.bincount(
        np.concatenate([s, e, left + 1, right]),
        weights=np.array([-1.0, 1.0, 1.0, -1.0]).repeat(m),
        minlength=n + 1,
    )
    keep = delta[:n].cumsum() > -0.5
    kept: np.ndarray = order[keep]
    return kept
