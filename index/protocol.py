"""The interface every index store offers to the membership core (embedded, Elasticsearch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .config import FingerprintParams


@dataclass(frozen=True)
class FingerprintHits:
    """Postings found for a batch of query keys; ``qi`` indexes the query keys."""

    qi: np.ndarray
    doc: np.ndarray  # int64 global document reference
    pos: np.ndarray
    line: np.ndarray
    meta: np.ndarray
    df: np.ndarray  # int64 postings of the hit's key in the whole store (how common its shape is)


@dataclass(frozen=True)
class BandHits:
    qi: np.ndarray
    doc: np.ndarray
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
