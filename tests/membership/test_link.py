"""Linking chains: the search by diagonal that many chains take gives the groups that trying
every group in reach gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membership import chains as chaining
from membership.chains import chain_hits, link_by_diagonal, link_chains
from membership.common_keys import effective_positions


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(2, 400),
    diagonals=st.integers(1, 40),
    spread=st.sampled_from([50, 500, 3000]),
)
def test_linking_by_diagonal_makes_the_groups_that_trying_every_group_makes(
    seed: int, n: int, diagonals: int, spread: int
) -> None:
    rng = np.random.default_rng(seed)
    # Hits as a query's document gives them: sorted by query then source position, on a few
    # diagonals (a table's rows, copies) with the drift that edits leave, some positions in
    # common stretches (a gap in ``e`` smaller than in ``q``).
    q = np.sort(rng.integers(0, 300, n))
    s = np.maximum(q + rng.choice(rng.integers(0, spread, diagonals), n) + rng.integers(-5, 6, n), 0)
    order = np.lexsort((s, q))
    q, s = q[order], s[order]
    e = effective_positions(q, rng.random(n) < 0.2, 301)[q]
    gap, drift, skip = 50, 44, 440
    chains = chain_hits(q, s, e, gap, drift)
    args = (q.tolist(), s.tolist(), e.tolist(), gap, skip)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chaining, "LINK_BY_DIAGONAL", 10**9)
        every = link_chains([list(c) for c in chains], *args)
    assert link_by_diagonal([list(c) for c in chains], *args) == every
    # And many chains take it.
    assert link_chains([list(c) for c in chains], *args) == every


@pytest.mark.parametrize("by_diagonal", [False, True])
def test_of_groups_ending_on_one_diagonal_the_first_made_is_joined(by_diagonal: bool) -> None:
    # Two groups end at query position 0 on diagonal 100; the chain at 5 on it joins the first.
    q, s, e = [0, 0, 5, 9], [100, 100, 105, 180], [0, 0, 5, 9]
    chains = [[0], [1], [2], [3]]
    link = link_by_diagonal if by_diagonal else link_chains
    assert link(chains, q, s, e, 50, 440) == [[0, 2, 3], [1]]
