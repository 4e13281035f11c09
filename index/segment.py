"""One immutable segment of the embedded index: packed fingerprint and band tables plus a
document table.

Each table is a bucket directory and bit-packed records (``index/packed.py``), ``.npy`` files
opened with ``mmap_mode="r"``, so opening costs a few syscalls and the OS pages in only what
queries touch. Every file's size and CRC-32 are recorded in ``segment.json`` with the tables'
layouts; sizes are checked on open, checksums by ``code-search verify``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError

from .doctable import DOCS_FILE, OFFSETS_FILE, DocTable, write_doc_table
from .packed import KEY_BITS, Layout, PackedTable, PackedWriter, bits_for, plan

MAX_POS = (1 << 20) - 1
MAX_LINE = (1 << 20) - 1
MAX_SPAN = 0xFF  # line span of a fingerprinted k-gram (more: a multi-line string literal)
MAX_BAND_SPAN = 0xFFF  # line span of a MinHash window
CONC_BITS = 16  # hash of the concrete k-gram: tells verbatim from renamed
# Fields of each table in record order; each as wide as the segment's largest value needs.
FIELDS = {"fp": ("doc", "pos", "line", "span", "conc"), "mh": ("doc", "first", "span")}
_FILES = ("fp_dir.npy", "fp_rec.npy", "mh_dir.npy", "mh_rec.npy", OFFSETS_FILE, DOCS_FILE)


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by name (a directory: so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_table(
    directory: Path, table: str, keys: np.ndarray, columns: dict[str, np.ndarray], key_bits: int
) -> Layout:
    """Sort one table by (key, document, position) and write its directory and records: within
    a key the postings are in document order, which ``lookup_in_documents`` relies on."""
    names = FIELDS[table]
    keys = np.asarray(keys, dtype=np.uint64)
    order = np.lexsort((columns[names[1]], columns["doc"], keys))
    keys = keys[order]
    cols = {n: np.asarray(columns[n], dtype=np.uint64)[order] for n in names}
    layout = plan(len(keys), key_bits, field_widths(table, cols))
    writer = PackedWriter(directory / f"{table}_rec.npy", len(keys), layout)
    writer.add(keys, cols)
    np.save(directory / f"{table}_dir.npy", writer.close())
    return layout


def field_widths(table: str, columns: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    """Each field as wide as its largest value in ``columns`` needs (the concrete hash: 16)."""
    return [
        (n, CONC_BITS if n == "conc" else bits_for(int(columns[n].max()) if len(columns[n]) else 0))
        for n in FIELDS[table]
    ]


# A table to write: (stored keys, columns) in memory, or a function that writes it into the
# segment directory itself (a streaming merge) and returns its layout.
TableSource = tuple[np.ndarray, dict[str, np.ndarray]] | Callable[[Path, str, int], Layout]


def write_segment(
    directory: Path,
    tables: Mapping[str, TableSource],
    docs: Iterable[dict[str, Any]],
    key_bits: int = KEY_BITS,
) -> dict[str, Any]:
    """Write a segment into the (new, empty) ``directory``; returns its description.
    ``tables`` maps "fp" and "mh" to (stored keys, columns named as in ``FIELDS``) or to a
    function that writes the table."""
    directory.mkdir(parents=True)
    layouts = {}
    for name in FIELDS:
        source = tables[name]
        layout = (
            source(directory, name, key_bits)
            if callable(source)
            else _write_table(directory, name, *source, key_bits)
        )
        layouts[name] = layout.to_json()
    info: dict[str, Any] = {
        "docs": write_doc_table(directory, docs),
        "fingerprints": _records(directory, "fp"),
        "band_keys": _records(directory, "mh"),
        "layouts": layouts,
        "files": {},
    }
    for name in _FILES:
        path = directory / name
        fsync_path(path)
        info["files"][name] = {"size": path.stat().st_size, "crc32": _crc(path)}
    (directory / "segment.json").write_text(json.dumps(info, indent=1))
    fsync_path(directory / "segment.json")
    fsync_path(directory)
    return info


def _records(directory: Path, table: str) -> int:
    directory_array = np.load(directory / f"{table}_dir.npy", mmap_mode="r")
    return int(directory_array[-1])


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
        layouts = info.get("layouts")
        if not isinstance(layouts, dict) or set(layouts) != set(FIELDS):
            raise IndexCorruptError(f"index segment {directory} lists no table layouts; rebuild the index")
        tables: dict[str, PackedTable] = {}
        counts = {"fp": info["fingerprints"], "mh": info["band_keys"]}
        try:
            # Plain ndarray views of the maps: slicing a np.memmap builds a memmap object each
            # time, a measurable share of a query that touches a hundred keys.
            for name in FIELDS:
                layout = Layout.from_json(layouts[name])
                if tuple(n for n, _ in layout.fields) != FIELDS[name]:
                    raise IndexCorruptError(
                        f"index segment {directory} has unknown fields; rebuild the index"
                    )
                tables[name] = PackedTable(
                    np.asarray(np.load(directory / f"{name}_dir.npy", mmap_mode="r")),
                    np.asarray(np.load(directory / f"{name}_rec.npy", mmap_mode="r")),
                    counts[name],
                    layout,
                )
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read index segment {directory}: {exc}; rebuild the index"
            ) from exc
        except IndexCorruptError as exc:
            raise IndexCorruptError(f"index segment {directory}: {exc}") from None
        self.fp, self.mh = tables["fp"], tables["mh"]
        self.key_bits = self.fp.layout.key_bits
        if self.mh.layout.key_bits != self.key_bits:
            raise IndexCorruptError(f"index segment {directory} is inconsistent; rebuild the index")
        self._docs = DocTable(directory, info["docs"])
        self.deleted: frozenset[int] = frozenset()

    @property
    def num_docs(self) -> int:
        return int(self.info["docs"])

    def doc(self, doc_id: int) -> dict[str, Any]:
        return self._docs.doc(doc_id)

    def iter_docs(self) -> Iterable[dict[str, Any]]:
        return iter(self._docs)

    @property
    def docs_path(self) -> Path:
        return self._docs.path

    def verify(self) -> list[str]:
        """Checksum every file; returns the names of damaged ones."""
        bad = []
        for name, meta in self.info["files"].items():
            if _crc(self.directory / name) != meta["crc32"]:
                bad.append(str(self.directory / name))
        return bad

    def close(self) -> None:
        self._docs.close()
