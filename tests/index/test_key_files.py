"""Files per common fingerprint key (``fp_files_key.npy``/``fp_files.npy``): written at build
time and by compaction, summed over segments by ``EmbeddedIndex.key_files``, and absent from a
segment written before them (the store then counts postings, as it did)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.builder import build
from index.compact import compact_index
from index.config import BuildLimits
from index.segment import FILES_COUNT_FILE, FILES_KEYS_FILE, FILES_MIN_POSTINGS, KeyFilesWriter, Segment
from index.sources import DirectorySource
from index.store import COMMON_SAMPLE, EmbeddedIndex, segment_files
from stacklens.errors import IndexCorruptError
from tests.conftest import CORPUS_FILES, STDLIB

HEADER = "".join(
    f"# Copyright (c) 2026 Example Corporation, clause {i}: you may use, copy and modify this file\n"
    for i in range(6)
)


def _corpus(root: Path, n: int, repeats: int, first: int = 0) -> Path:
    """``n`` files that each hold ``HEADER`` ``repeats`` times around their own code, and two
    files of the standard library."""
    root.mkdir(parents=True)
    for i in range(first, first + n):
        body = "".join(f"def f_{i}_{j}(v_{j}):\n    return v_{j} * {i * 10 + j}\n\n" for j in range(4))
        (root / f"m{i}.py").write_text("\n".join([HEADER, body, *[HEADER] * (repeats - 1)]))
    for rel in CORPUS_FILES[:2]:
        shutil.copy(STDLIB / rel, root / f"{first}_{Path(rel).name}")
    return root


def _build(index: Path, root: Path, **kw: object) -> None:
    build(index, [DirectorySource(root, BuildLimits())], progress=False, **kw)  # type: ignore[arg-type]


def _brute_files(seg: Segment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored key of ``seg``, its postings and its distinct documents, by reading all."""
    idx = np.arange(len(seg.fp))
    keys, doc = seg.fp.keys(idx), seg.doc_pos("fp", idx)[0]
    stored, postings = np.unique(keys, return_counts=True)
    pairs = np.unique(np.stack([keys, doc.astype(np.uint64)]), axis=1)
    files = np.bincount(np.searchsorted(stored, pairs[0]), minlength=len(stored))
    return stored, postings, files


def test_every_key_that_a_lookup_can_sample_is_counted() -> None:
    # A lookup reads at most COMMON_SAMPLE postings of a sampled key (max_postings may be 1):
    # every key with more postings must be in the table.
    assert FILES_MIN_POSTINGS <= COMMON_SAMPLE


def test_files_per_key_equal_the_distinct_documents(tmp_path: Path) -> None:
    _build(tmp_path / "idx", _corpus(tmp_path / "src", 30, 3))
    with EmbeddedIndex(tmp_path / "idx") as idx:
        (seg,) = idx.segments
        stored, postings, files = _brute_files(seg)
        assert seg.files is not None
        table_keys, table_files = seg.files
        common = postings > FILES_MIN_POSTINGS
        assert (table_keys == stored[common]).all() and (table_files == files[common]).all()
        assert (files[common] == 30).any() and (postings[common] >= 90).any()  # the header's keys
        lo, hi = seg.fp.ranges(stored)
        assert (segment_files(seg, stored, lo, hi) == files).all()  # short ranges counted exactly
        names = set(seg.info["files"])
        assert {FILES_KEYS_FILE, FILES_COUNT_FILE} <= names and idx.verify() == []


def test_counts_survive_compaction_and_sum_over_segments(tmp_path: Path) -> None:
    index = tmp_path / "idx"
    _build(index, _corpus(tmp_path / "a", 12, 3), compact=False)
    _build(index, _corpus(tmp_path / "b", 9, 2, first=100), compact=False)
    with EmbeddedIndex(index) as idx:
        assert len(idx.segments) == 2
        keys = np.concatenate([seg.fp.keys(np.arange(len(seg.fp))) for seg in idx.segments])
    # Query keys are 64-bit hashes; stored keys are their mix (`key_of`), so ask by stored key
    # through the segments directly and through the store's sum.
    stored = np.unique(keys)
    with EmbeddedIndex(index) as idx:
        before = sum(segment_files(seg, stored, *seg.fp.ranges(stored)) for seg in idx.segments)
    compact_index(index)
    with EmbeddedIndex(index) as idx:
        (seg,) = idx.segments
        after = segment_files(seg, stored, *seg.fp.ranges(stored))
        _, _, brute = _brute_files(seg)
        assert (after == brute).all() and (after == before).all()
        assert after.max() == 12 + 9  # the header's keys: every templated file of both builds


def test_a_key_split_between_chunks_is_counted_once_per_document(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    starts = np.r_[0, np.cumsum(rng.integers(20, 60, size=40))]
    keys = np.sort(rng.integers(0, 12, size=600).astype(np.uint64))
    at = np.concatenate([np.sort(rng.integers(0, starts[-1], size=c)) for c in np.bincount(keys.astype(int))])
    whole = KeyFilesWriter(starts)
    whole.add(keys, at.astype(np.uint64))
    chunked = KeyFilesWriter(starts)
    for part in np.array_split(np.arange(len(keys)), 7):  # cuts fall inside keys
        chunked.add(keys[part], at[part].astype(np.uint64))
    out = []
    for w, name in ((whole, "w"), (chunked, "c")):
        directory = tmp_path / name
        directory.mkdir()
        w.save(directory)
        out.append((np.load(directory / FILES_KEYS_FILE), np.load(directory / FILES_COUNT_FILE)))
    doc = np.searchsorted(starts, at, side="right") - 1
    expect = [len(np.unique(doc[keys == k])) for k in np.unique(keys)]
    assert out[0][0].tolist() == out[1][0].tolist() == np.unique(keys).tolist()
    assert out[0][1].tolist() == out[1][1].tolist() == expect


def test_common_keys_next_to_each_other_in_one_document_count_it_for_each(tmp_path: Path) -> None:
    # Documents are looked up for the common keys' postings only, run after run: a run that
    # starts in the document where the run before it ended still counts that document.
    starts = np.array([0, 100, 200, 300])
    runs = [
        (1, list(range(9))),
        (2, list(range(10, 19))),
        (3, [20, 150]),
        (4, [*range(30, 35), *range(120, 126)]),
    ]
    keys = np.concatenate([np.full(len(at), k, dtype=np.uint64) for k, at in runs])
    at = np.concatenate([np.array(at, dtype=np.uint64) for _, at in runs])
    writer = KeyFilesWriter(starts)
    writer.add(keys, at)
    writer.save(tmp_path)
    assert np.load(tmp_path / FILES_KEYS_FILE).tolist() == [1, 2, 4]
    assert np.load(tmp_path / FILES_COUNT_FILE).tolist() == [1, 1, 2]


def _strip_files_table(index: Path) -> None:
    """Make the index's segments look written before the files table."""
    manifest = json.loads((index / "manifest.json").read_text())
    for info in manifest["segments"]:
        for name in (FILES_KEYS_FILE, FILES_COUNT_FILE):
            del info["files"][name]
            (index / info["name"] / name).unlink()
        info.pop("files_min_postings")
        (index / info["name"] / "segment.json").write_text(
            json.dumps({k: v for k, v in info.items() if k != "name"})
        )
    (index / "manifest.json").write_text(json.dumps(manifest))


def test_a_segment_without_the_table_opens_and_counts_postings(tmp_path: Path) -> None:
    _build(tmp_path / "idx", _corpus(tmp_path / "src", 30, 3))
    _strip_files_table(tmp_path / "idx")
    with EmbeddedIndex(tmp_path / "idx") as idx:
        (seg,) = idx.segments
        assert seg.files is None and idx.verify() == []
        stored, postings, files = _brute_files(seg)
        assert (segment_files(seg, stored, *seg.fp.ranges(stored)) == postings).all()
        assert (postings > files).any()


def test_a_damaged_files_table_is_reported(tmp_path: Path) -> None:
    _build(tmp_path / "idx", _corpus(tmp_path / "src", 30, 3))
    (seg_dir,) = (tmp_path / "idx").glob("seg-*")
    path = seg_dir / FILES_COUNT_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with EmbeddedIndex(tmp_path / "idx") as idx:
        assert idx.verify() == [str(path)]
    data[20] = ord("(")  # inside the .npy header: read on first use, an index error then
    path.write_bytes(bytes(data))
    with EmbeddedIndex(tmp_path / "idx") as idx:
        assert idx.verify() == [str(path)]
        with pytest.raises(IndexCorruptError, match="rebuild the index"):
            idx.key_files(np.arange(3, dtype=np.uint64))
    path.write_bytes(bytes(data[:-4]))
    with pytest.raises(IndexCorruptError, match="damaged"):
        EmbeddedIndex(tmp_path / "idx")
