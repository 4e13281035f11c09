"""The interface every index store offers to the membership core (embedded, Elasticsearch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from .config import FingerprintParams


@dataclass(frozen=True)
class FingerprintHits:
    """Postings found for a batch of query keys; ``qi`` indexes the query keys."""

    qi: np.ndarray
    doc: np.ndarray  # int64 global document reference
    pos: np.ndarray
    # Source line of the k-gram's first token, and meta: its 16-bit concrete hash with the line
    # span above it. A line of -1: the store resolves lines itself (its ``hit_lines``), and
    # the bits of meta above the hash are the store's own.
    line: np.ndarray
    meta: np.ndarray
    df: np.ndarray  # int64 postings of the hit's key in the whole store (how common its shape is)


@dataclass(frozen=True)
class BandHits:
    qi: np.ndarray
    doc: np.ndarray
    # First and last source line of the hit's window. A line of -1: the store resolves lines
    # itself (its ``band_lines``), and end_line holds what it needs to.
    line: np.ndarray
    end_line: np.ndarray


class IndexStore(Protocol):
    """Candidate lookup by fingerprint and band key; documents by reference."""

    params: FingerprintParams

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> FingerprintHits: ...

    def lookup_in_documents(self, keys: np.ndarray, docs: np.ndarray) -> FingerprintHits: ...

    def lookup_bands(self, keys: np.ndarray, max_postings: int) -> BandHits: ...

    def document(self, ref: int) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class LooksUpBoth(Protocol):
    """A store that can look up a query's fingerprints and its bands together (Elasticsearch:
    one request for both): the band hits come as a function, called only when the query needs
    them (no exact match). A store without it is asked for its bands only then."""

    def lookup_with_bands(
        self, keys: np.ndarray, band_keys: np.ndarray, max_postings: int
    ) -> tuple[FingerprintHits, Callable[[], BandHits]]: ...


def concrete_mask(store: IndexStore) -> int:
    """The bits of ``FingerprintHits.meta``'s concrete hash that a store keeps (16 unless it
    says fewer with a ``concrete_mask`` attribute): a query compares its own hash's same bits."""
    return int(getattr(store, "concrete_mask", 0xFFFF))


class ResolvesLines(Protocol):
    """A store whose fingerprint hits carry no lines (``line`` -1) resolves them itself."""

    def hit_lines(self, hits: FingerprintHits, first: int, last: int) -> tuple[int, int]: ...

    def band_lines(self, hits: BandHits, sel: np.ndarray) -> tuple[int, int]: ...


def hit_lines(store: IndexStore, hits: FingerprintHits, first: int, last: int) -> tuple[int, int]:
    """The source line where hit ``first``'s k-gram starts and the one where hit ``last``'s
    ends: from the hits where the store filled in lines, else from the store's ``hit_lines``
    (the embedded index keeps lines out of its postings and resolves them only for the hits
    of reported matches)."""
    if int(hits.line[first]) < 0:
        return cast(ResolvesLines, store).hit_lines(hits, first, last)
    return int(hits.line[first]), int(hits.line[last] + (hits.meta[last] >> 16))


def band_lines(store: IndexStore, hits: BandHits, sel: np.ndarray) -> tuple[int, int]:
    """The first and the last source line of the windows of band hits ``sel`` (one document)."""
    if int(hits.line[sel][0]) < 0:
        return cast(ResolvesLines, store).band_lines(hits, sel)
    return int(hits.line[sel].min()), int(hits.end_line[sel].max())


def key_files(store: IndexStore, keys: np.ndarray, postings: np.ndarray) -> np.ndarray:
    """How many files hold each fingerprint key ``keys`` in the whole store, whose postings are
    ``postings`` (int64): the store's ``key_files`` where it counts them (the embedded index
    keeps the count of every key a lookup may sample), else the postings, at least the files."""
    count = getattr(store, "key_files", None)
    if count is None or not len(keys):
        return postings
    return np.asarray(count(keys), dtype=np.int64)
