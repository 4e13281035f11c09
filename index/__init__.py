"""Corpus reading, normalisation, fingerprinting and the index stores."""

from .config import BuildLimits, FingerprintParams
from .protocol import IndexStore
from .store import EmbeddedIndex
from .writer import IndexWriter

__all__ = [
    "BuildLimits",
    "EmbeddedIndex",
    "FingerprintParams",
    "IndexStore",
    "IndexWriter",
]
