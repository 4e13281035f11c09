"""Builds that scale: N worker processes give the index one worker gives, and merging segments
decodes a key range at a time, never more than its budget of records (plus one key's postings),
with the same result as a merge in one step."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import index.merge as merge
from index.builder import build
from index.compact import compact_index
from index.config import BuildLimits
from index.packed import PackedWriter
from index.segment import FIELDS
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from tests.conftest import CORPUS_FILES, STDLIB

_MORE = [*CORPUS_FILES, "csv.py", "fnmatch.py", "colorsys.py", "string.py", "base64.py"]


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for rel in _MORE:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / rel, dest)
    return root


def _contents(path: Path) -> list[object]:
    """Everything a segment holds, file names and timestamps aside."""
    out: list[object] = []
    with EmbeddedIndex(path) as idx:
        for seg in idx.segments:
            out.append(list(seg.iter_docs()))
            for name in FIELDS:
                table = getattr(seg, name)
                every = np.arange(len(table))
                out.append((table.layout, table.all_keys().tolist()))
                out.append({f: v.tolist() for f, v in table.columns(every).items()})
                out.extend(np.asarray(t.records).tobytes() for t in table.tables)
    return out


def test_two_build_jobs_give_the_index_one_gives(tmp_path: Path) -> None:
    root = _corpus(tmp_path)
    for jobs in (1, 2):
        build(tmp_path / f"j{jobs}", [DirectorySource(root, BuildLimits())], jobs=jobs, progress=False)
    assert _contents(tmp_path / "j1") == _contents(tmp_path / "j2")


def _spilled(tmp_path: Path) -> Path:
    """The corpus built with one segment per file: the sorted runs a large build spills, which
    it merges at the end."""
    runs = tmp_path / "runs"
    build(
        runs,
        [DirectorySource(_corpus(tmp_path), BuildLimits())],
        limits=BuildLimits(segment_bytes=1),
        compact=False,
        progress=False,
    )
    return runs


def test_a_merge_in_tiny_steps_is_bounded_and_equals_one_in_one_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _spilled(tmp_path)
    with EmbeddedIndex(runs) as idx:
        assert len(idx.segments) == len(_MORE)
        total = sum(len(s.fp) for s in idx.segments)
        keys = np.concatenate([s.fp.all_keys() for s in idx.segments])
        most_common = int(np.unique(keys, return_counts=True)[1].max())
    shutil.copytree(runs, tmp_path / "small")
    compact_index(runs)  # one step: the default budget holds the whole index
    batches: list[int] = []
    add = PackedWriter.add

    def counting(self: PackedWriter, keys: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        batches.append(len(keys))
        add(self, keys, columns)

    budget = total // 25  # many steps, whatever the winnowing density
    monkeypatch.setattr(merge, "MERGE_RECORDS", budget)
    monkeypatch.setattr(PackedWriter, "add", counting)
    compact_index(tmp_path / "small")
    assert sum(batches) > total > 20 * budget  # fingerprints and bands, in many steps
    assert max(batches) <= max(3 * budget, most_common + budget)
    assert _contents(tmp_path / "small") == _contents(runs)


def test_segments_kept_whole_merge_as_records_renumbered_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge of segments with no deletions shifts token numbers by a segment's offset
    (`MergeInput.first`) instead of looking each record's document up: the same index."""
    runs = _spilled(tmp_path)
    shutil.copytree(runs, tmp_path / "slow")
    shifted: list[int] = []
    first = merge.MergeInput.__dict__["first"].func

    def watched(self: merge.MergeInput) -> int | None:
        shifted.append(first(self) is not None)
        return first(self)  # type: ignore[no-any-return]

    monkeypatch.setattr(merge.MergeInput, "first", property(watched))
    compact_index(runs)
    assert shifted and all(shifted)
    monkeypatch.setattr(merge.MergeInput, "first", property(lambda self: None))
    compact_index(tmp_path / "slow")
    assert _contents(tmp_path / "slow") == _contents(runs)
