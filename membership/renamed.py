"""The evidence a renamed-only chain (its hits' structure matches, their names differ) must
give: rare enough hits, and shapes specific to the query rather than separators and repeats."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from index.normalize import PLACEHOLDER_ID, Tokens, token_id

# Sum over a renamed-only chain's hits of 1 / files holding its key, at a winnowing window of 11
# (fewer as a wider window keeps fewer k-grams): four hits found in no other file, six when the
# hits lie on more than one diagonal. On the seven-language benchmark (3,220 cases) this refuses
# 16 of 33 false positives (renamed-looking look-alikes within one project: glibc's syscall
# wrappers, rxjs's operators) for 12 of 2,520 right answers; three hits refused 0 of them.
STRUCTURE_EVIDENCE = 4.0
STRUCTURE_EVIDENCE_SPREAD = 6.0


def rarity_needed(spread: bool, window: int) -> float:
    """The rarities a renamed-only chain's hits must sum to (`STRUCTURE_EVIDENCE`), at this
    winnowing window: what `Matcher._score_chain` asks and `hopeless` bounds."""
    return (STRUCTURE_EVIDENCE_SPREAD if spread else STRUCTURE_EVIDENCE) * 12 / (window + 1)


def hopeless(exact: np.ndarray, rarity: np.ndarray, starts: np.ndarray, min_rarity: float) -> np.ndarray:
    """Per document (its hits from ``starts``, with ``exact`` and positive ``rarity`` per hit),
    whether no chain of its hits can pass `Matcher._score_chain`'s evidence tests. A chain of
    two hits counts only when both are verbatim; one of three or more with at most one verbatim
    hit is mostly renamed, so its rarities must sum to ``min_rarity`` (the smaller of the two
    thresholds) or more. A document with at most one verbatim hit whose rarities all together
    sum to less cannot give either. The sum is compared with a margin: a chain's float sum (in
    numpy's order) of fewer positive terms is then below the threshold whatever the order."""
    verbatim = np.add.reduceat(exact.astype(np.int64), starts)
    total = np.add.reduceat(rarity, starts)
    out: np.ndarray = (verbatim <= 1) & (total < min_rarity * (1 - 1e-6))
    return out


# Separators carry no evidence of shared structure: a list of names is all commas.
_SEPARATORS = ", . ( ) [ ] { } : ;"
PUNCTUATION = np.array([token_id(t) for t in _SEPARATORS.split()], dtype=np.uint64)


class Shape:
    """Per-query counts over token ranges for the structure-only checks, computed once on first
    use instead of once per chain."""

    def __init__(self, tokens: Tokens, structure: np.ndarray) -> None:
        self._tokens, self._structure = tokens, structure

    @cached_property
    def _specific_prefix(self) -> list[int]:
        abstract = self._tokens.abstract
        specific = (abstract != PLACEHOLDER_ID) & ~np.isin(abstract, PUNCTUATION)
        prefix: list[int] = np.concatenate(([0], specific.cumsum())).tolist()
        return prefix

    @cached_property
    def _previous_same(self) -> np.ndarray:
        """Index of the previous k-gram with the same structure hash, or -1."""
        order = np.argsort(self._structure, kind="stable")
        same = self._structure[order[1:]] == self._structure[order[:-1]]
        prev = np.full(len(order), -1, dtype=np.int64)
        prev[order[1:][same]] = order[:-1][same]
        return prev

    def specific(self, i: int, j: int) -> int:
        """Tokens in ``[i, j)`` that are neither placeholders nor separators."""
        return self._specific_prefix[j] - self._specific_prefix[i]

    def distinct(self, i: int, j: int) -> int:
        """Distinct structure hashes among the k-grams ``[i, j)``: those first seen there."""
        return int((self._previous_same[i:j] < i).sum())
