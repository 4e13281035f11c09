"""The error hierarchy, re-exported where it used to live: new code imports `stacklens.errors`."""

from stacklens.errors import (
    BackendError,
    ConfigError,
    DiskFullError,
    IndexBusyError,
    IndexCorruptError,
    IndexNotFoundError,
    InputError,
    PayloadTooLargeError,
    StacklensError,
)

__all__ = [
    "BackendError",
    "ConfigError",
    "DiskFullError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexNotFoundError",
    "InputError",
    "PayloadTooLargeError",
    "StacklensError",
]
