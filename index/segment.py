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
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from tokenize import TokenError
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError

from .doctable import BLOCK_DOCS, DOCS_FILE, LEGACY_BLOCK_DOCS, OFFSETS_FILE, DocTable, write_doc_table
from .grouped import GroupedTable, GroupedWriter, WholeKeys, counts_of, key_runs, open_grouped
from .grouped import files as grouped_files
from .linetable import LINES_FILE, LINES_OFFSETS_FILE, LineTable, write_line_table
from .packed import KEY_BITS, Layout, PackedTable, PackedWriter, bits_for, concat_ranges, plan
from .tokendocs import TokenDocs

MAX_POS = (1 << 20) - 1
# Bits of the concrete k-gram's hash: tells verbatim from renamed. 6 read the same quick quality
# table but for one false positive in 420 more (bench/bench_density.py), not measured on the full
# cases, so not taken; 4 had more (21 of 420) and an embedded copy not located.
CONC_BITS = 8
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
# Files holding each fingerprint key with more than ``FILES_MIN_POSTINGS`` postings: its stored
# key and the count, sorted by key. A query reads at most ``store.COMMON_SAMPLE`` (8) postings of
# a common key, so only a key with more can be sampled; one with fewer is read in full and its
# files counted then. Without the table (a segment written before it) the store counts postings.
FILES_MIN_POSTINGS = 8
FILES_KEYS_FILE, FILES_COUNT_FILE = "fp_files_key.npy", "fp_files.npy"
# The fingerprint table is grouped: a key held by more than one posting is stored once
# (`index/grouped.py`).
GROUPED = frozenset({"fp"})
_FILES = (
    *grouped_files("fp"),
    "mh_dir.npy",
    "mh_rec.npy",
    OFFSETS_FILE,
    DOCS_FILE,
    STARTS_FILE,
    LINES_OFFSETS_FILE,
    LINES_FILE,
    FILES_KEYS_FILE,
    FILES_COUNT_FILE,
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


def doc_of(starts: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Document (int64) of each token number ``at``, given each document's first token number
    (``starts``, the total at the end: `doc_starts`)."""
    doc: np.ndarray = np.searchsorted(starts, np.asarray(at, dtype=np.int64), side="right") - 1
    return doc


class KeyFilesWriter:
    """Counts the documents holding each common fingerprint key as a table is written, from
    chunks of records sorted by (key, token number); a key may continue into the next chunk."""

    def __init__(self, starts: np.ndarray, min_postings: int = FILES_MIN_POSTINGS) -> None:
        self.starts = np.asarray(starts, dtype=np.int64)
        self.min_postings = min_postings
        self._keys: list[np.ndarray] = []
        self._files: list[np.ndarray] = []
        self._whole = WholeKeys()

    def add(self, keys: np.ndarray, at: np.ndarray) -> None:
        keys, cols = self._whole.take(np.asarray(keys, dtype=np.uint64), {"at": np.asarray(at)})
        self._count(keys, cols["at"])

    def _count(self, keys: np.ndarray, at: np.ndarray) -> None:
        if not len(keys):
            return
        first, count = key_runs(keys)
        common = count > self.min_postings
        if not common.any():
            return
        # Documents are looked up for the common keys' postings only (a tenth of them at 100 MB:
        # a search per posting was 0.4 s of a 100 MB build's 6 s of storage).
        sizes = count[common]
        starts = first[common]
        run_first = np.cumsum(sizes) - sizes
        doc = doc_of(self.starts, at[concat_ranges(starts, sizes)])
        new_doc = np.r_[True, doc[1:] != doc[:-1]]
        new_doc[run_first] = True
        self._keys.append(keys[starts])
        self._files.append(np.add.reduceat(new_doc.astype(np.int64), run_first))

    def save(self, directory: Path) -> None:
        rest = self._whole.rest()
        if rest is not None:
            self._count(rest[0], rest[1]["at"])
        np.save(directory / FILES_KEYS_FILE, np.concatenate([np.empty(0, np.uint64), *self._keys]))
        files = np.concatenate([np.empty(0, np.int64), *self._files])
        np.save(directory / FILES_COUNT_FILE, files.astype(np.uint32))


def _write_table(
    directory: Path,
    table: str,
    keys: np.ndarray,
    columns: dict[str, np.ndarray],
    key_bits: int,
    starts: np.ndarray,
) -> tuple[dict[str, Any], int]:
    """Sort one table by (key, document, position) and write it: within a key the postings
    are in document order, which ``lookup_in_documents`` relies on. The fingerprint table's
    files per common key go beside it (``KeyFilesWriter``). Returns the layout description and
    the number of records."""
    names = FIELDS[table]
    keys = np.asarray(keys, dtype=np.uint64)
    order = np.lexsort((*(columns[n] for n in reversed(ORDER[table])), keys))
    keys = keys[order]
    cols = {n: np.asarray(columns[n])[order] for n in names}  # in their dtypes (builder._fp_table)
    widths = field_widths(table, cols)
    writer: GroupedWriter | PlainWriter = (
        GroupedWriter(directory, table, counts_of(keys), key_bits, widths)
        if table in GROUPED
        else PlainWriter(directory, table, len(keys), key_bits, widths)
    )
    writer.add(keys, cols)
    layouts = writer.close()
    if table == "fp":
        files = KeyFilesWriter(starts)
        files.add(keys, cols["at"])
        files.save(directory)
    return layouts, len(keys)


class PlainWriter:
    """Writes a packed table of ``n`` records from sorted batches (`PackedWriter`), and its
    directory when closed; the counterpart of `GroupedWriter` for the tables not grouped."""

    def __init__(
        self, directory: Path, name: str, n: int, key_bits: int, fields: Sequence[tuple[str, int]]
    ) -> None:
        self.layout = plan(n, key_bits, fields)
        self._directory_path = directory / f"{name}_dir.npy"
        self._writer = PackedWriter(directory / f"{name}_rec.npy", n, self.layout)

    def add(self, keys: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        self._writer.add(keys, columns)

    def close(self) -> dict[str, Any]:
        """Finish the files; returns the table's layout (for ``segment.json``)."""
        np.save(self._directory_path, self._writer.close())
        return self.layout.to_json()


def doc_starts(tokens: Iterable[int]) -> np.ndarray:
    """First token number of each document of ``tokens`` tokens, and the total."""
    starts: np.ndarray = np.r_[0, np.cumsum(np.fromiter(tokens, dtype=np.int64))].astype(np.int64)
    return starts


def field_widths(table: str, columns: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    """Each field as wide as its largest value in ``columns`` needs (the concrete hash: CONC_BITS)."""
    return [
        (n, CONC_BITS if n == "conc" else bits_for(int(columns[n].max()) if len(columns[n]) else 0))
        for n in FIELDS[table]
    ]


# A table to write: (stored keys, columns) in memory, or a function that writes it into the
# segment directory itself (a streaming merge) and returns its layout description and number
# of records; the fingerprint table's function writes its files per common key too
# (``KeyFilesWriter``).
TableSource = (
    tuple[np.ndarray, dict[str, np.ndarray]] | Callable[[Path, str, int], tuple[dict[str, Any], int]]
)


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
    layouts, records = {}, {}
    for name in FIELDS:
        source = tables[name]
        layouts[name], records[name] = (
            source(directory, name, key_bits)
            if callable(source)
            else _write_table(directory, name, *source, key_bits, starts)
        )
    n_docs = write_doc_table(directory, docs, BLOCK_DOCS)
    if write_line_table(directory, lines) != n_docs or len(starts) != n_docs + 1:
        raise ValueError("a segment needs one line table record and one start per document")
    np.save(directory / STARTS_FILE, np.asarray(starts, dtype=np.uint64))
    info: dict[str, Any] = {
        "docs": n_docs,
        "doc_block": BLOCK_DOCS,
        "fingerprints": records["fp"],
        "band_keys": records["mh"],
        "layouts": layouts,
        "files_min_postings": FILES_MIN_POSTINGS,
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
        counts = {"fp": info["fingerprints"], "mh": info["band_keys"]}
        try:
            # Plain ndarray views of the maps: slicing a np.memmap builds a memmap object each
            # time, a measurable share of a query that touches a hundred keys.
            fp = open_grouped(directory, "fp", layouts["fp"], counts["fp"])
            mh = PackedTable(
                np.asarray(np.load(directory / "mh_dir.npy", mmap_mode="r")),
                np.asarray(np.load(directory / "mh_rec.npy", mmap_mode="r")),
                counts["mh"],
                Layout.from_json(layouts["mh"]),
            )
            fields = [("fp", t.layout) for t in (fp.singles, fp.posts)] + [("mh", mh.layout)]
            if any(tuple(n for n, _ in layout.fields) != FIELDS[name] for name, layout in fields):
                raise IndexCorruptError(f"index segment {directory} has unknown fields; rebuild the index")
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read index segment {directory}: {exc}; rebuild the index"
            ) from exc
        except IndexCorruptError as exc:
            raise IndexCorruptError(f"index segment {directory}: {exc}") from None
        self.fp: GroupedTable = fp
        self.mh: PackedTable = mh
        self.key_bits = self.fp.layout.key_bits
        if self.mh.layout.key_bits != self.key_bits:
            raise IndexCorruptError(f"index segment {directory} is inconsistent; rebuild the index")
        # A segment written before the block size was recorded has blocks of 64.
        block_docs = info.get("doc_block", LEGACY_BLOCK_DOCS)
        if not isinstance(block_docs, int):
            raise IndexCorruptError(
                f"index segment {directory} lists no document block size; rebuild the index"
            )
        self._docs = DocTable(directory, info["docs"], block_docs)
        self.lines = LineTable(directory, info["docs"])
        self.starts = np.asarray(np.load(directory / STARTS_FILE), dtype=np.int64)
        if len(self.starts) != self.num_docs + 1:
            raise IndexCorruptError(f"index segment {directory} is inconsistent; rebuild the index")
        self.deleted: frozenset[int] = frozenset()
        # Documents holding each key with more than ``files_min`` postings (`KeyFilesWriter`),
        # read on first use (`files`): none in a segment written before the table.
        self._has_files = FILES_KEYS_FILE in info["files"] and FILES_COUNT_FILE in info["files"]
        self._files: tuple[np.ndarray, np.ndarray] | None = None
        self.files_min = int(info.get("files_min_postings", FILES_MIN_POSTINGS)) if self._has_files else 0

    @property
    def files(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Stored keys (sorted) and document counts of the keys with more than ``files_min``
        postings; None if the segment has no such table."""
        if self._has_files and self._files is None:
            try:
                keys, files = (
                    np.load(self.directory / n, mmap_mode="r") for n in (FILES_KEYS_FILE, FILES_COUNT_FILE)
                )
            except (ValueError, OSError, SyntaxError, TokenError) as exc:  # a damaged .npy header
                raise IndexCorruptError(
                    f"cannot read index segment {self.directory}: {exc}; rebuild the index"
                ) from exc
            if len(keys) != len(files):
                raise IndexCorruptError(f"index segment {self.directory} is inconsistent; rebuild the index")
            self._files = np.asarray(keys), np.asarray(files)
        return self._files

    def doc_pos(self, table: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document, token position) of records ``idx`` of ``table``, int64."""
        return self.locate(getattr(self, table).field("at", idx))

    def locate(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document, token position) of token numbers ``at``, int64."""
        at = np.asarray(at).astype(np.int64)
        doc = self._token_docs.of(at)
        return doc, at - self.starts[doc]

    @cached_property
    def _token_docs(self) -> TokenDocs:
        # Made on first use (1 ms at 1 GB): opening a segment stays a few syscalls.
        return TokenDocs(self.starts)

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
