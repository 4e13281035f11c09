"""Shape checks of an embedded index's manifest: valid JSON of the wrong shape (a field missing,
``null`` or of another type) is as damaged as invalid JSON, and must say so rather than fail
later with a ``KeyError`` wherever a reader or a writer indexes into it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stacklens.errors import IndexCorruptError

from .config import FingerprintParams

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
