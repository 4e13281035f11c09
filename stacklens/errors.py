"""The one error hierarchy of stacklens.

Every package raises these; each boundary converts them once: the CLI prints the message and
exits 2, the HTTP services answer a 4xx/5xx status, the language server a JSON-RPC error or a
`window/showMessage`. Messages say what went wrong and what to do next.
"""

from __future__ import annotations


class StacklensError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is shown to them as is."""

    http_status = 500


class InputError(StacklensError):
    """The input itself is unusable (binary, invalid UTF-8, empty, too large, malformed)."""

    http_status = 400


class PayloadTooLargeError(InputError):
    """A request body over the server's size limit."""

    http_status = 413


class ConfigError(StacklensError):
    """A setting is invalid or missing."""

    http_status = 400


class IndexNotFoundError(StacklensError):
    """No index exists at the given location."""

    http_status = 404


class IndexCorruptError(StacklensError):
    """The index exists but its files are damaged or of an unknown format version."""

    http_status = 500


class IndexBusyError(StacklensError):
    """Another process holds the index's write lock."""

    http_status = 409


class BackendError(StacklensError):
    """A remote service (model server, Elasticsearch, membership service) failed or is down."""

    http_status = 502


class DiskFullError(StacklensError):
    """A write failed for want of space (or quota); what it had written is removed."""

    http_status = 507
