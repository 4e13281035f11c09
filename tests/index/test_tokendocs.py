"""`TokenDocs` finds the document of a token number as bisecting the documents' starts does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.segment import doc_of
from index.tokendocs import TokenDocs


def _starts(lengths: list[int]) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(np.asarray(lengths, dtype=np.int64)))).astype(np.int64)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 5), st.integers(1, 5000)), min_size=1, max_size=200))
def test_every_token_as_bisection(lengths: list[int]) -> None:
    # Runs of empty and short documents among long ones: a grid step holds many document
    # starts, more than the steps on from the grid's document reach (bisected then).
    starts = _starts(lengths)
    if starts[-1] == 0:
        return
    at = np.arange(int(starts[-1]))
    assert (TokenDocs(starts).of(at) == doc_of(starts, at)).all()


def test_short_documents_past_the_steps() -> None:
    # One long document sets the grid step (a quarter to a half of the mean); a hundred
    # one-token documents after it lie within one step, so most need the bisection.
    starts = _starts([40000] + [1] * 100 + [40000])
    td = TokenDocs(starts)
    assert 1 << td.shift > 100
    at = np.arange(int(starts[-1]))
    assert (td.of(at) == doc_of(starts, at)).all()


def test_first_and_last_token_of_each_document() -> None:
    rng = np.random.default_rng(5)
    starts = _starts(rng.integers(1, 3000, 2000).tolist())
    td = TokenDocs(starts)
    docs = np.arange(len(starts) - 1)
    assert (td.of(starts[:-1]) == docs).all()
    assert (td.of(starts[1:] - 1) == docs).all()
