"""Near copies with scattered edits: MinHash band keys of the query's line windows, looked up
with the fingerprints where the store can, and the candidates their agreeing windows give."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from typing import cast

import numpy as np

from index.fingerprint import BandKeys, minhash_bands
from index.normalize import Tokens
from index.protocol import BandHits, FingerprintHits, IndexStore, LooksUpBoth, band_lines

from .candidate import Candidate


class NearLookup:
    """A query's MinHash bands (computed when first needed) and their hits: looked up with the
    fingerprints where the store does both in one request (`index.protocol.LooksUpBoth`),
    else on their own, only when the query finds no exact match; not at all unless ``wanted``."""

    def __init__(self, store: IndexStore, tokens: Tokens, max_postings: int, wanted: bool) -> None:
        self.store, self.tokens, self.max_postings, self.wanted = store, tokens, max_postings, wanted
        self._hits: Callable[[], BandHits] | None = None

    @cached_property
    def bands(self) -> BandKeys:
        return minhash_bands(self.tokens, self.store.params, stride=1)

    def fingerprints(self, keys: np.ndarray) -> FingerprintHits:
        if not self.wanted or not hasattr(self.store, "lookup_with_bands"):
            return self.store.lookup_fingerprints(keys, self.max_postings)
        both = cast(LooksUpBoth, self.store)
        found, self._hits = both.lookup_with_bands(keys, self.bands.keys, self.max_postings)
        return found

    def hits(self) -> BandHits:
        if self._hits is None:
            return self.store.lookup_bands(self.bands.keys, self.max_postings)
        return self._hits()


def near_candidates(store: IndexStore, tokens: Tokens, near: NearLookup, min_chars: int) -> list[Candidate]:
    """Near copies: query windows whose MinHash bands agree with a document's (two bands of a
    window at least), one candidate a document spanning its agreeing windows."""
    p = store.params
    bands = near.bands
    if len(bands.keys) == 0:
        return []
    hits = near.hits()
    if len(hits.qi) < 2:
        return []
    win = bands.window[hits.qi]
    out: list[Candidate] = []
    for doc in np.unique(hits.doc):
        sel = hits.doc == doc
        # A window counts when at least two of its bands agree: one band alone fires for
        # loosely similar boilerplate far too often.
        wins, per_win = np.unique(win[sel], return_counts=True)
        windows = wins[per_win >= min(2, p.minhash_bands)]
        if len(windows) == 0:
            continue
        q_start = min(bands.ranges[w][0] for w in windows)
        q_end = max(bands.ranges[w][1] for w in windows)
        chars = tokens.norm_chars(q_start, q_end)
        if chars < min_chars:
            continue
        strong = sel & np.isin(win, windows)
        band_share = strong.sum() / (len(windows) * p.minhash_bands)
        out.append(
            Candidate(
                doc=int(doc),
                q_start=q_start,
                q_end=q_end,
                src_lines=partial(band_lines, store, hits, strong),
                kind="near",
                score=round(float(min(0.9, 0.5 + 0.4 * band_share)), 4),
                chars=chars,
            )
        )
    return out
