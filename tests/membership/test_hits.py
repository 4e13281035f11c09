"""The hit ordering and repeat thinning give exactly what the multi-key sorts they replace gave,
and the documents left out of chaining could not have given a match."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from membership.hits import lexorder, nearest_repeats
from membership.renamed import STRUCTURE_EVIDENCE, hopeless


def _reference_repeats(
    order: np.ndarray, doc: np.ndarray, qi: np.ndarray, pos: np.ndarray, most: int
) -> np.ndarray:
    """The selection as it was written with ``np.lexsort`` (before membership/hits.py)."""
    d, qq = doc[order], qi[order]
    first = np.r_[True, (d[1:] != d[:-1]) | (qq[1:] != qq[:-1])]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    if not (np.arange(len(order)) - run_start >= most).any():
        return order
    diag = (pos - qi)[order]
    doc_start = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    by_diag = np.lexsort((diag, d))
    doc_len = np.diff(np.r_[doc_start, len(order)])
    median = diag[by_diag[doc_start + doc_len // 2]]
    deviation = np.abs(diag - np.repeat(median, doc_len))
    resort = np.lexsort((deviation, qq, d))
    run_of = np.cumsum(first) - 1
    first_sorted = np.r_[True, run_of[resort][1:] != run_of[resort][:-1]]
    start_sorted = np.maximum.accumulate(np.where(first_sorted, np.arange(len(order)), 0))
    keep = resort[np.arange(len(order)) - start_sorted < most]
    return order[np.sort(keep)]


def _hits(seed: int, n: int, docs: int, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hits with few query k-grams and many repeats per document, deduplicated and sorted."""
    rng = np.random.default_rng(seed)
    doc = rng.integers(0, docs, n) | (rng.integers(0, 2, n) << 32)  # two segments' references
    qi = rng.integers(0, 40, n)
    pos = np.where(rng.random(n) < 0.5, qi + rng.integers(0, 3, n) * 7, rng.integers(0, span, n))
    order = np.lexsort((pos, qi, doc))
    o_doc, o_q, o_pos = doc[order], qi[order], pos[order]
    dup = (o_doc[1:] == o_doc[:-1]) & (o_q[1:] == o_q[:-1]) & (o_pos[1:] == o_pos[:-1])
    return order[np.r_[True, ~dup]], doc, qi, pos


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 600),
    docs=st.sampled_from([1, 3, 50]),
    span=st.sampled_from([10, 300, 100_000]),
    most=st.integers(1, 5),
)
def test_nearest_repeats_keeps_what_the_sorting_version_kept(
    seed: int, n: int, docs: int, span: int, most: int
) -> None:
    order, doc, qi, pos = _hits(seed, n, docs, span)
    expected = _reference_repeats(order, doc, qi, pos, most)
    assert np.array_equal(nearest_repeats(order, doc, qi, pos, most), expected)


def test_nearest_repeats_thins_a_repeated_kgram_to_the_median_diagonal() -> None:
    # One k-gram at query position 5 found 10 times in one file (positions 96, 98, ..., 114);
    # eleven other hits put the file's median diagonal at 100, so position 105 is the nearest:
    # 104 and 106 are as near, then 102 and 108, of which the earlier is kept.
    qi = np.r_[np.full(10, 5), np.arange(10, 120, 10)]
    pos = np.r_[np.arange(96, 116, 2), np.arange(10, 120, 10) + 100]
    doc = np.zeros(len(pos), dtype=np.int64)
    order = np.lexsort((pos, qi, doc))
    for most, expected in [(1, [104]), (2, [104, 106]), (3, [102, 104, 106])]:
        kept = nearest_repeats(order, doc, qi, pos, most)
        assert pos[kept][qi[kept] == 5].tolist() == expected
        assert len(kept) == 11 + most
        assert np.array_equal(kept, _reference_repeats(order, doc, qi, pos, most))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    high=st.sampled_from([1, 5, 1000, 2**40, 2**62]),
    negative=st.booleans(),
)
def test_lexorder_is_lexsort(seed: int, n: int, high: int, negative: bool) -> None:
    rng = np.random.default_rng(seed)
    low = -high if negative else 0
    keys = [rng.integers(low, high, n, endpoint=True) for _ in range(3)]
    for k in (keys[:1], keys[:2], keys):
        assert np.array_equal(lexorder(*k), np.lexsort(k[::-1]))


def _could_pass(exact: np.ndarray, rarity: np.ndarray, chain: tuple[int, ...], min_rarity: float) -> bool:
    """The evidence tests a chain must pass to be scored as a match (looser than the real ones:
    two hits must both be verbatim, more must be half verbatim or rare enough)."""
    idx = list(chain)
    if len(idx) == 2:
        return bool(exact[idx].all())
    return bool(exact[idx].mean() >= 0.5 or float(rarity[idx].sum()) >= min_rarity)


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=5),
    files=st.lists(st.integers(1, 6), min_size=35, max_size=35),
    verbatim=st.lists(st.booleans(), min_size=35, max_size=35),
    window=st.sampled_from([11, 15]),
)
def test_a_hopeless_document_has_no_chain_that_passes(
    sizes: list[int], files: list[int], verbatim: list[bool], window: int
) -> None:
    """`hopeless` may leave a document out of chaining only when no chain of its hits (any
    subset of two or more) could pass: its verbatim hits and rarities say so."""
    n = sum(sizes)
    exact = np.asarray(verbatim[:n])
    rarity = 1.0 / np.asarray(files[:n], dtype=np.int64)  # as in Matcher._exact: 1 / files
    starts = np.cumsum([0, *sizes[:-1]])
    min_rarity = STRUCTURE_EVIDENCE * 12 / (window + 1)
    skipped = hopeless(exact, rarity, starts, min_rarity)
    for d, (a, size) in enumerate(zip(starts, sizes, strict=True)):
        hits = range(a, a + size)
        passing = [
            c
            for k in range(2, size + 1)
            for c in itertools.combinations(hits, k)
            if _could_pass(exact, rarity, c, min_rarity)
        ]
        assert not (skipped[d] and passing), (d, passing[:1])
        # And it is left out whenever the whole document is below both bounds.
        if exact[a : a + size].sum() <= 1 and rarity[a : a + size].sum() < min_rarity - 1e-9:
            assert skipped[d]
