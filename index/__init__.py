"""Corpus reading, normalisation, fingerprinting and the index stores."""

from .config import BuildLimits, FingerprintParams
from .errors import (
    BackendError,
    ConfigError,
    DiskFullError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotFoundError,
    InputError,
    StacklensError,
)
from .protocol import IndexStore
from .store import EmbeddedIndex, IndexWriter

__all__ = [
    "BackendError",
    "BuildLimits",
    "ConfigError",
    "DiskFullError",
    "EmbeddedIndex",
    "FingerprintParams",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexNotFoundError",
    "IndexStore",
    "IndexWriter",
    "InputError",
    "StacklensError",
]
