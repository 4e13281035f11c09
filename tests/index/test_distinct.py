"""The sort-and-mask forms of ``np.unique`` give its arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.distinct import distinct_counts, distinct_first_inverse, distinct_inverse, distinct_values


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=120), st.sampled_from([np.int64, np.uint64]))
def test_as_np_unique(values: list[int], dtype: type) -> None:
    # Few distinct values among many: repeats, the first of several equal, empty arrays.
    a = np.asarray(values, dtype=dtype) * dtype(2**40 + 1)  # wide values, not only small ones
    assert _same(distinct_values(a), np.unique(a))
    keys, inverse = distinct_inverse(a)
    expected_keys, expected_inverse = np.unique(a, return_inverse=True)
    assert _same(keys, expected_keys) and _same(inverse, expected_inverse.astype(np.intp))
    first, inverse = distinct_first_inverse(a)
    _, expected_first, expected_inverse = np.unique(a, return_index=True, return_inverse=True)
    assert _same(first, expected_first) and _same(inverse, expected_inverse.astype(np.intp))
    keys, counts = distinct_counts(a)
    expected_keys, expected_counts = np.unique(a, return_counts=True)
    assert _same(keys, expected_keys) and _same(counts, expected_counts)
