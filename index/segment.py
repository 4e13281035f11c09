"""One immutable segment of the embedded index: sorted fingerprint tables plus a document table.

Arrays are ``.npy`` files opened with ``mmap_mode="r"``, so opening costs a few syscalls and the
OS pages in only what queries touch. Every file's size and CRC-32 are recorded in
``segment.json``; sizes are checked on open, checksums by ``code-search verify``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptError

# Keys are the upper 32 bits of the 64-bit hashes: a stray key match costs one discarded hit
# in verification, and every byte per entry counts (the index should stay under half the corpus).
KEY_DTYPE = np.dtype("<u4")
# packed: token pos (20 bits) | line (20) | line span (8) | concrete-k-gram hash (16)
FP_DTYPE = np.dtype([("doc", "<u4"), ("packed", "<u8")])
# lines: first line (20 bits) | line span (12)
MH_DTYPE = np.dtype([("doc", "<u4"), ("lines", "<u4")])
MAX_POS = (1 << 20) - 1
MAX_LINE = (1 << 20) - 1
_ARRAYS = ("fp_keys.npy", "fp_vals.npy", "mh_keys.npy", "mh_vals.npy", "docs_off.npy")
_FILES = (*_ARRAYS, "docs.jsonl")


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_segment(
    directory: Path,
    fp_keys: np.ndarray,
    fp_vals: np.ndarray,
    mh_keys: np.ndarray,
    mh_vals: np.ndarray,
    docs: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """Write a segment into the (new, empty) ``directory``; returns its description."""
    directory.mkdir(parents=True)
    order = np.argsort(fp_keys, kind="stable")
    np.save(directory / "fp_keys.npy", fp_keys[order])
    np.save(directory / "fp_vals.npy", fp_vals[order])
    order = np.argsort(mh_keys, kind="stable")
    np.save(directory / "mh_keys.npy", mh_keys[order])
    np.save(directory / "mh_vals.npy", mh_vals[order])
    offsets = [0]
    with (directory / "docs.jsonl").open("wb") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
            offsets.append(f.tell())
    np.save(directory / "docs_off.npy", np.asarray(offsets, dtype=np.uint64))
    info: dict[str, Any] = {
        "docs": len(offsets) - 1,
        "fingerprints": len(fp_keys),
        "band_keys": len(mh_keys),
        "files": {},
    }
    for name in _FILES:
        path = directory / name
        _fsync(path)
        info["files"][name] = {"size": path.stat().st_size, "crc32": _crc(path)}
    (directory / "segment.json").write_text(json.dumps(info, indent=1))
    _fsync(directory / "segment.json")
    _fsync(directory)
    return info


class Segment:
    """A read-only, memory-mapped segment."""

    def __init__(self, directory: Path, info: dict[str, Any]) -> None:
        self.directory = directory
        self.name = directory.name
        self.info = info
        for name, meta in info["files"].items():
            path = directory / name
            if not path.exists():
                raise IndexCorruptError(f"index file {path} is missing; rebuild the index")
            if path.stat().st_size != meta["size"]:
                raise IndexCorruptError(
                    f"index file {path} has {path.stat().st_size} bytes, expected {meta['size']}: "
                    "the index is damaged; rebuild it with `code-search build`"
                )
        try:
            # Plain ndarray views of the maps: slicing a np.memmap builds a memmap object each
            # time, a measurable share of a query that touches a hundred keys.
            self.fp_keys = np.asarray(np.load(directory / "fp_keys.npy", mmap_mode="r"))
            self.fp_vals = np.asarray(np.load(directory / "fp_vals.npy", mmap_mode="r"))
            self.mh_keys = np.asarray(np.load(directory / "mh_keys.npy", mmap_mode="r"))
            self.mh_vals = np.asarray(np.load(directory / "mh_vals.npy", mmap_mode="r"))
            self.doc_offsets = np.load(directory / "docs_off.npy", mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read index segment {directory}: {exc}; rebuild the index"
            ) from exc
        if (
            self.fp_keys.dtype != KEY_DTYPE
            or self.mh_vals.dtype != MH_DTYPE
            or self.fp_vals.dtype != FP_DTYPE
            or len(self.fp_keys) != info["fingerprints"]
            or len(self.fp_vals) != info["fingerprints"]
            or len(self.mh_keys) != info["band_keys"]
            or len(self.doc_offsets) != info["docs"] + 1
        ):
            raise IndexCorruptError(f"index segment {directory} is inconsistent; rebuild the index")
        self._docs = (directory / "docs.jsonl").open("rb")
        self.deleted: frozenset[int] = frozenset()

    @property
    def num_docs(self) -> int:
        return int(self.info["docs"])

    def doc(self, doc_id: int) -> dict[str, Any]:
        start, end = int(self.doc_offsets[doc_id]), int(self.doc_offsets[doc_id + 1])
        # pread: no shared file position, so threads (the HTTP service, the language server's
        # background checks) can read documents concurrently.
        raw = os.pread(self._docs.fileno(), end - start, start)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise IndexCorruptError(f"document table of {self.directory} is damaged") from exc

    def iter_docs(self) -> Iterable[dict[str, Any]]:
        with (self.directory / "docs.jsonl").open("rb") as f:
            for line in f:
                yield json.loads(line)

    def verify(self) -> list[str]:
        """Checksum every file; returns the names of damaged ones."""
        bad = []
        for name, meta in self.info["files"].items():
            if _crc(self.directory / name) != meta["crc32"]:
                bad.append(str(self.directory / name))
        return bad

    def close(self) -> None:
        self._docs.close()
