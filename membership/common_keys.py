"""Keys that hundreds of files share (licence headers, boilerplate): which of a query's keys the
store only sampled, the query positions with their stretches left out, and files per key."""

from __future__ import annotations

import numpy as np

from index.protocol import FingerprintHits

from .hits import lexorder


def sampled_keys(found: FingerprintHits, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query key: whether the store read only a sample of its postings (hundreds of files
    share it, or it did not fit the budget), and how many postings it has."""
    df = np.zeros(n_keys, dtype=np.int64)
    df[found.qi] = found.df
    return np.bincount(found.qi, minlength=n_keys) < df, df


def effective_positions(at: np.ndarray, sampled: np.ndarray, n: int) -> np.ndarray:
    """Query positions with the common stretches left out. ``at`` holds the position of every
    hit, ``sampled`` whether its key is common (``sampled_keys``); a stretch between two common
    keys with no other key in it is common too (the index keeps one k-gram in a window, so
    most positions of a licence header have no key at all)."""
    state = np.zeros(n, dtype=np.int8)  # 0: no key, 2: common, 1: a key read in full
    state[at[sampled]] = 2
    state[at[~sampled]] = 1
    ar = np.arange(n)
    prev = np.maximum.accumulate(np.where(state > 0, ar, -1))
    nxt = np.minimum.accumulate(np.where(state > 0, ar, n)[::-1])[::-1]
    inside = (prev >= 0) & (nxt < n)
    common = (state == 2) | (
        inside & (state[np.maximum(prev, 0)] == 2) & (state[np.minimum(nxt, n - 1)] == 2)
    )
    c = common.astype(np.int64)
    effective: np.ndarray = ar - c.cumsum() + c
    return effective


def files_per_key(found: FingerprintHits, sampled: np.ndarray, sampled_files: np.ndarray) -> np.ndarray:
    """How many files hold each query key: distinct documents where all its postings were read,
    ``sampled_files`` where only a sample was (the store's count, `index.protocol.key_files`;
    a store that keeps none gives the postings, an upper bound). A k-gram repeated all over one
    file (a table, a run of similar blocks, a licence header repeated) is still one file."""
    # Distinct (key, document) pairs; document references are any int64 (Elasticsearch's too).
    # The embedded index gives a key's postings together and in document order (one segment's):
    # equal pairs are then next to each other already, and sorting them is spared.
    qi, doc = found.qi, found.doc
    new_key = qi[1:] != qi[:-1]
    if not ((qi[1:] >= qi[:-1]) & (new_key | (doc[1:] >= doc[:-1]))).all():
        order = lexorder(qi, doc)
        qi, doc = qi[order], doc[order]
        new_key = qi[1:] != qi[:-1]
    first = np.concatenate(([True], new_key | (doc[1:] != doc[:-1])))
    files = np.bincount(qi[first], minlength=len(sampled))
    files[sampled] = sampled_files
    return files
