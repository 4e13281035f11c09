"""The interface every index store offers to the membership core (embedded, Elasticsearch)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .config import FingerprintParams
from .store import BandHits, FingerprintHits


class IndexStore(Protocol):
    """Candidate lookup by fingerprint and band key; documents by reference."""

    params: FingerprintParams

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> FingerprintHits: ...

    def lookup_in_documents(self, keys: np.ndarray, docs: np.ndarray) -> FingerprintHits: ...

    def lookup_bands(self, keys: np.ndarray, max_postings: int) -> BandHits: ...

    def document(self, ref: int) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...
