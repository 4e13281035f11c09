"""One immutable segment of the embedded index: packed fingerprint and band tables plus a
document table and a line table (`index/linetable.py`).

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
from .linetable import LINES_FILE, LINES_OFFSETS_FILE, LineTable, write_line_table
from .packed import KEY_BITS, Layout, PackedTable, PackedWriter, bits_for, plan

MAX_POS = (1 << 20) - 1
CONC_BITS = 8  # of the concrete k-gram's hash: tells verbatim from renamed
# Fields of each table in record order; each as wide as the segment's largest value needs.
# A fingerprint's document and token position are one segment-wide token number, "at" (the
# document's first token, STARTS_FILE, plus the position): at 1 GB 28 bits instead of 17 + 18.
# Its lines are in the line table; "flag" marks the postings whose k-gram does not end at token
# pos + kgram - 1 (bridges), whose span the line table lists.
# A band key's posting is the token number of its window's first token: the window's lines are
# resolved from the line table too (format 3: document, first line and span, 49 bits at 1 GB).
FIELDS = {"fp": ("at", "flag", "conc"), "mh": ("at",)}
# Sort order within a key: document order, which ``lookup_in_documents`` relies on.
ORDER = {"fp": ("at",), "mh": ("at",)}
STARTS_FILE = "doc_start.npy"
_FILES = (
    "fp_dir.npy",
    "fp_rec.npy",
    "mh_dir.npy",
    "mh_rec.npy",
    OFFSETS_FILE,
    DOCS_FILE,
    STARTS_FILE,
    LINES_OFFSETS_FILE,
    LINES_FILE,
)


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
    order = np.lexsort((*(columns[n] for n in reversed(ORDER[table])), keys))
    keys = keys[order]
    cols = {n: np.asarray(columns[n], dtype=np.uint64)[order] for n in names}
    layout = plan(len(keys), key_bits, field_widths(table, cols))
    writer = PackedWriter(directory / f"{table}_rec.npy", len(keys), layout)
    writer.add(keys, cols)
    np.save(directory / f"{table}_dir.npy", writer.close())
    return layout


def doc_starts(tokens: Iterable[int]) -> np.ndarray:
    """First token number of each document of ``tokens`` tokens, and the total."""
    starts: np.ndarray = np.r_[0, np.cumsum(np.fromiter(tokens, dtype=np.int64))].astype(np.int64)
    return starts


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
    lines: Iterable[bytes],
    starts: np.ndarray,
    key_bits: int = KEY_BITS,
) -> dict[str, Any]:
    """Write a segment into the (new, empty) ``directory``; returns its description.
    ``tables`` maps "fp" and "mh" to (stored keys, columns named as in ``FIELDS``) or to a
    function that writes the table; ``lines``: each document's line table record
    (`index.linetable.encode_lines`), in document order; ``starts``: each document's first
    token number, and the total at the end (`doc_starts`)."""
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
    n_docs = write_doc_table(directory, docs)
    if write_line_table(directory, lines) != n_docs or len(starts) != n_docs + 1:
        raise ValueError("a segment needs one line table record and one start per document")
    np.save(directory / STARTS_FILE, np.asarray(starts, dtype=np.uint64))
    info: dict[str, Any] = {
        "docs": n_docs,
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
        self.lines = LineTable(directory, info["docs"])
        self.starts = np.asarray(np.load(directory / STARTS_FILE), dtype=np.int64)
        if len(self.starts) != self.num_docs + 1:
            raise IndexCorruptError(f"index segment {directory} is inconsistent; rebuild the index")
        self.deleted: frozenset[int] = frozenset()

    def fp_docs(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document, token position) of fingerprint records ``idx``, int64."""
        return self.doc_pos("fp", idx)

    def doc_pos(self, table: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document, token position) of records ``idx`` of ``table``, int64."""
        at = getattr(self, table).field("at", idx).astype(np.int64)
        doc = np.searchsorted(self.starts, at, side="right") - 1
        return doc, at - self.starts[doc]

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
        self.lines.close()
