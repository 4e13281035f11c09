"""An embedded index's manifest: its format and version, and the one place that reads it.

Valid JSON of the wrong shape (a field missing, ``null`` or of another type) is as damaged as
invalid JSON, and must say so rather than fail later with a ``KeyError`` wherever a reader or a
writer indexes into it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stacklens.errors import IndexCorruptError, IndexNotFoundError

from .config import FingerprintParams
from .packed import KEY_BITS

FORMAT = "stacklens-index"
# 2: comments are indexed and one tokenisation serves every language (2026-12): a version-1
# index holds other fingerprints and would silently miss.
# 3: bit-packed postings under a bucket directory, 48-bit keys (were 32; 2026-12).
# 4: lines in a per-document line table instead of every posting, document and position as one
# token number (2026-12).
# 5: a fingerprint key held by more than one posting stored once (index/grouped.py), 46-bit
# keys (2026-12).
FORMAT_VERSION = 5
_WHY_REBUILD = {
    1: "the fingerprints changed",
    2: "the tables are packed and keys have 48 bits instead of 32",
    3: "the postings are smaller: lines moved to a line table, document and position became one number",
    4: "a key shared by several postings is stored once, and keys have 46 bits",
}
MANIFEST = "manifest.json"

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # a file in the index directory, never a path


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_shape(manifest: dict[str, Any], path: Path, version: int) -> None:
    """An `IndexCorruptError` unless every field that readers and writers index into is there,
    of its type. The fields of a manifest of another ``version`` than this one are not checked:
    the caller reports the version."""

    def damaged(what: str) -> IndexCorruptError:
        return IndexCorruptError(
            f"the manifest of the index at {path} is damaged ({what}); rebuild the index"
        )

    if not _count(manifest.get("version")):
        raise damaged(f"its version is {manifest.get('version')!r}, not a number")
    if manifest["version"] != version:
        return
    if not isinstance(manifest.get("params"), dict):
        raise damaged("no fingerprint parameters")
    try:
        FingerprintParams(**manifest["params"])
    except (TypeError, ValueError) as exc:
        raise damaged(f"invalid fingerprint parameters: {exc}") from None
    segments, deleted = manifest.get("segments"), manifest.get("deleted", {})
    if not isinstance(segments, list):
        raise damaged("`segments` is not a list")
    for i, seg in enumerate(segments):
        files = seg.get("files") if isinstance(seg, dict) else None
        if (
            not isinstance(files, dict)
            or not isinstance(seg.get("name"), str)
            or not _NAME.fullmatch(seg["name"])
            or not all(_count(seg.get(k)) for k in ("docs", "fingerprints", "band_keys"))
            or not all(
                isinstance(name, str)
                and _NAME.fullmatch(name)
                and isinstance(f, dict)
                and _count(f.get("size"))
                and _count(f.get("crc32"))
                for name, f in files.items()
            )
        ):
            raise damaged(f"segment entry {i} is malformed")
    if not isinstance(deleted, dict) or not all(
        isinstance(ids, list) and all(_count(d) for d in ids) for ids in deleted.values()
    ):
        raise damaged("`deleted` is not a map of document ids")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``, its format, version and shape checked."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise IndexNotFoundError(
            f"no index at {path}: build one with `code-search build --index {path} SOURCE...`"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(
            f"the manifest of the index at {path} is damaged ({exc}); rebuild the index"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexCorruptError(f"{path} does not hold a stacklens index")
    check_shape(manifest, path, FORMAT_VERSION)
    if manifest.get("version") != FORMAT_VERSION:
        version = manifest.get("version")
        why = _WHY_REBUILD.get(version, "it was written by another stacklens")  # type: ignore[arg-type]
        raise IndexCorruptError(
            f"the index at {path} has format version {version}, this stacklens "
            f"reads version {FORMAT_VERSION}; rebuild it: `code-search build --index NEW_PATH SOURCE...` "
            f"with the same sources ({why}, so it cannot be upgraded in place)"
        )
    return manifest


def manifest_key_bits(manifest: dict[str, Any], path: Path) -> int:
    """The key width a manifest names (46 by default), checked."""
    bits = manifest.get("key_bits", KEY_BITS)
    if not isinstance(bits, int) or not 8 <= bits <= 64:
        raise IndexCorruptError(
            f"the manifest of the index at {path} is damaged (key_bits {bits!r}); rebuild the index"
        )
    return bits
