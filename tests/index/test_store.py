from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.builder import build, parse_shard
from index.compact import compact_index
from index.config import BuildLimits, FingerprintParams
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from index.writer import IndexWriter
from membership.query import Matcher
from stacklens.errors import IndexCorruptError, IndexNotFoundError, InputError
from tests.conftest import CORPUS_FILES, STDLIB


def _corpus(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "corpus"
    for rel in names:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / rel, dest)
    return root


def _build(index: Path, root: Path, **kw: object) -> object:
    return build(index, [DirectorySource(root, BuildLimits())], progress=False, **kw)  # type: ignore[arg-type]


def _snippet(rel: str, start: int = 20, n: int = 25) -> str:
    return "".join((STDLIB / rel).read_text().splitlines(keepends=True)[start : start + n])


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="code-search build"):
        EmbeddedIndex(tmp_path / "nope")


def test_incremental_build_adds_updates_and_skips_unchanged(tmp_path: Path) -> None:
    root = _corpus(tmp_path, CORPUS_FILES[:3])
    idx_path = tmp_path / "idx"
    first = _build(idx_path, root)
    assert first.files == 3  # type: ignore[attr-defined]
    again = _build(idx_path, root)
    assert (again.files, again.unchanged) == (0, 3)  # type: ignore[attr-defined]
    shutil.copy(STDLIB / CORPUS_FILES[3], root / "extra.py")
    target = root / CORPUS_FILES[0]
    original = target.read_text()
    target.write_text("# changed header\n" + original.replace("def ", "def  ", 1))
    third = _build(idx_path, root)
    assert (third.files, third.updated, third.unchanged) == (2, 1, 2)  # type: ignore[attr-defined]
    with EmbeddedIndex(idx_path) as idx:
        assert idx.num_docs == 4
        paths = sorted(d["path"] for _, _, d in idx.iter_documents())
        assert paths == sorted([*CORPUS_FILES[:3], "extra.py"])


def test_replaced_documents_are_hidden_at_query_time_until_compaction(tmp_path: Path) -> None:
    """With compaction off the old version of a changed file stays in its segment, marked
    deleted in the manifest; queries must skip it (the filter in ``store._live``)."""
    root = _corpus(tmp_path, CORPUS_FILES[:3])
    idx_path = tmp_path / "idx"
    _build(idx_path, root, compact=False)
    target = root / CORPUS_FILES[0]
    lines = target.read_text().splitlines(keepends=True)
    old_part = "".join(lines[40:70])
    new_part = "".join(f"    value_{i} = compute_{i}(alpha, beta) + offset_{i} * {i}\n" for i in range(30))
    target.write_text("".join(lines[:40]) + new_part + "".join(lines[70:]))
    with EmbeddedIndex(idx_path) as idx:
        assert [m.source.path for m in Matcher(idx).check(old_part)][:1] == [CORPUS_FILES[0]]
    summary = _build(idx_path, root, compact=False)
    assert summary.updated == 1  # type: ignore[attr-defined]
    with EmbeddedIndex(idx_path) as idx:
        assert len(idx.segments) == 2 and sum(len(s.deleted) for s in idx.segments) == 1
        matcher = Matcher(idx)
        assert all(m.source.path != CORPUS_FILES[0] for m in matcher.check(old_part))
        found = matcher.check(new_part)
        assert found and found[0].source.path == CORPUS_FILES[0]
        # The unchanged parts of the file are attributed once, to the live version.
        kept = "".join(lines[100:130])
        assert [m.source.path for m in matcher.check(kept)].count(CORPUS_FILES[0]) == 1
    # A file deleted from the tree is gone from the index on the next build.
    gone = root / CORPUS_FILES[1]
    gone_part = "".join(gone.read_text().splitlines(keepends=True)[40:70])
    with EmbeddedIndex(idx_path) as idx:
        assert [m.source.path for m in Matcher(idx).check(gone_part)][:1] == [CORPUS_FILES[1]]
    gone.unlink()
    summary = _build(idx_path, root, compact=False)
    assert (summary.removed, summary.files) == (1, 0)  # type: ignore[attr-defined]
    with EmbeddedIndex(idx_path) as idx:
        assert all(m.source.path != CORPUS_FILES[1] for m in Matcher(idx).check(gone_part))
        assert idx.num_docs == 2


def test_a_rebuild_prunes_only_its_own_tree(tmp_path: Path) -> None:
    """Two trees in one index: rebuilding one after a deletion leaves the other's files alone."""
    a = _corpus(tmp_path / "a", CORPUS_FILES[:2])
    b = _corpus(tmp_path / "b", CORPUS_FILES[2:4])
    idx_path = tmp_path / "idx"
    _build(idx_path, a)
    _build(idx_path, b)
    (a / CORPUS_FILES[0]).unlink()
    summary = _build(idx_path, a)
    assert (summary.removed, summary.unchanged) == (1, 1)  # type: ignore[attr-defined]
    with EmbeddedIndex(idx_path) as idx:
        paths = sorted(d["path"] for _, _, d in idx.iter_documents())
    assert paths == sorted([CORPUS_FILES[1], *CORPUS_FILES[2:4]])


def test_interrupted_build_keeps_the_previous_index_and_resumes(tmp_path: Path) -> None:
    root = _corpus(tmp_path, CORPUS_FILES)
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path / "a", CORPUS_FILES[:1]))
    before = (idx_path / "manifest.json").read_text()

    def crash(_name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(
            idx_path,
            [DirectorySource(root, BuildLimits())],
            limits=BuildLimits(segment_bytes=1),
            progress=False,
            on_segment=crash,
        )
    with EmbeddedIndex(idx_path) as idx:  # still opens: one segment committed before the crash
        assert idx.num_docs == 2
    assert (idx_path / "manifest.json").read_text() != before
    resumed = _build(idx_path, root)
    with EmbeddedIndex(idx_path) as idx:
        keys = [d["key"] for _, _, d in idx.iter_documents()]
    assert len(keys) == len(set(keys)) == len(CORPUS_FILES) + 1
    assert resumed.unchanged == 1  # type: ignore[attr-defined]


def test_a_killed_writer_leaves_no_trace(tmp_path: Path) -> None:
    root = _corpus(tmp_path, CORPUS_FILES[:2])
    idx_path = tmp_path / "idx"
    _build(idx_path, root)
    # A segment half-written by a process that no longer exists.
    stale = idx_path / ".tmp-999999999-seg-dead"
    stale.mkdir()
    (stale / "fp_keys.npy").write_bytes(b"partial")
    (idx_path / "manifest.json.999999999.tmp").write_text("{")
    IndexWriter(idx_path)
    assert not stale.exists()
    with EmbeddedIndex(idx_path) as idx:
        assert idx.num_docs == 2


def test_a_process_killed_mid_build_leaves_a_usable_index(tmp_path: Path) -> None:
    root = _corpus(tmp_path, CORPUS_FILES)
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path / "a", CORPUS_FILES[:1]))
    script = (
        "import os, signal, sys\n"
        "from index.builder import build\nfrom index.sources import DirectorySource\n"
        "from index.config import BuildLimits\n"
        "build(sys.argv[1], [DirectorySource(__import__('pathlib').Path(sys.argv[2]), BuildLimits())],"
        " limits=BuildLimits(segment_bytes=1), progress=False,"
        " on_segment=lambda n: os.kill(os.getpid(), signal.SIGKILL))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(idx_path), str(root)], cwd=Path(__file__).parents[2]
    )
    assert proc.returncode == -9
    with EmbeddedIndex(idx_path) as idx:
        assert idx.num_docs == 2  # the earlier document and the one committed before the kill
    _build(idx_path, root)
    with EmbeddedIndex(idx_path) as idx:
        assert idx.num_docs == len(CORPUS_FILES) + 1


def test_corruption_is_detected_with_a_clear_error(tmp_path: Path) -> None:
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path, CORPUS_FILES[:2]))
    seg = next(idx_path.glob("seg-*"))
    data = bytearray((seg / "fp_rec.npy").read_bytes())
    data[-5] ^= 0xFF
    (seg / "fp_rec.npy").write_bytes(bytes(data))
    with EmbeddedIndex(idx_path) as idx:  # same size: only checksums notice
        assert idx.verify() == [str(seg / "fp_rec.npy")]
    (seg / "fp_rec.npy").write_bytes(bytes(data[:-100]))
    with pytest.raises(IndexCorruptError, match="damaged"):
        EmbeddedIndex(idx_path)
    (idx_path / "manifest.json").write_text("{ truncated")
    with pytest.raises(IndexCorruptError, match="manifest"):
        EmbeddedIndex(idx_path)


def test_format_version_is_checked(tmp_path: Path) -> None:
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path, CORPUS_FILES[:1]))
    manifest = json.loads((idx_path / "manifest.json").read_text())
    manifest["version"] = 99
    (idx_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="format version 99"):
        EmbeddedIndex(idx_path)
    # An index of the format before comments were indexed is told how to rebuild.
    manifest["version"] = 1
    (idx_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match=r"format version 1, .*rebuild it: `code-search build"):
        EmbeddedIndex(idx_path)


def test_other_fingerprint_parameters_need_a_new_index(tmp_path: Path) -> None:
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path, CORPUS_FILES[:1]))
    with pytest.raises(IndexCorruptError, match="other fingerprint parameters"):
        IndexWriter(idx_path, FingerprintParams(kgram=9))


def test_shards_fill_one_index_and_merge_into_one_segment(tmp_path: Path) -> None:
    root = _corpus(tmp_path, CORPUS_FILES)
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    _build(full, root)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "membership",
                "build",
                "--index",
                str(sharded),
                "--shard",
                f"{i}/3",
                "--jobs",
                "1",
                str(root),
            ],
            cwd=Path(__file__).parents[2],
            stderr=subprocess.PIPE,
        )
        for i in range(3)
    ]
    assert all(w.wait(timeout=120) == 0 for w in workers)
    with EmbeddedIndex(sharded) as idx:
        assert idx.num_docs == len(CORPUS_FILES)
    assert compact_index(sharded) == len(CORPUS_FILES)
    # Snippets from every file at several places: each matches on the normal build, so the
    # comparison is between real answers, not two empty lists.
    queries = [
        _snippet(rel, n * part // 4, 20)
        for rel in CORPUS_FILES
        for n in [len((STDLIB / rel).read_text().splitlines())]
        for part in (0, 1, 2, 3)
    ]
    with EmbeddedIndex(sharded) as a, EmbeddedIndex(full) as b:
        assert len(a.segments) == 1
        sharded_matcher, full_matcher = Matcher(a), Matcher(b)
        for query in queries:
            expected = [m.model_dump() for m in full_matcher.check(query)]
            assert expected, query
            assert [m.model_dump() for m in sharded_matcher.check(query)] == expected


def test_merge_other_indexes_and_drop_deleted_documents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    root_a = _corpus(tmp_path / "ca", CORPUS_FILES[:2])
    _build(a, root_a)
    _build(b, _corpus(tmp_path / "cb", CORPUS_FILES[2:4]))
    # An update with compaction off leaves the old version of a file in a, marked deleted.
    target = root_a / CORPUS_FILES[0]
    lines = target.read_text().splitlines(keepends=True)
    old_part = "".join(lines[40:70])
    target.write_text("".join(lines[:40]) + "".join(lines[70:]))
    _build(a, root_a, compact=False)
    with EmbeddedIndex(a) as idx:
        assert sum(s.num_docs for s in idx.segments) == 3 and idx.num_docs == 2
    assert compact_index(a, [b]) == 4
    with EmbeddedIndex(a) as idx:
        assert idx.num_docs == 4 and len(idx.segments) == 1
        assert idx.segments[0].num_docs == 4 and not idx.segments[0].deleted  # dropped, not hidden
        assert sorted(d["path"] for _, _, d in idx.iter_documents()) == sorted(CORPUS_FILES[:4])
        matcher = Matcher(idx)
        matches = matcher.check(_snippet(CORPUS_FILES[3]))
        assert all(m.source.path != CORPUS_FILES[0] for m in matcher.check(old_part))
    assert matches and matches[0].source.path == CORPUS_FILES[3]


def test_parse_shard() -> None:
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(None) is None
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_index_opens_without_reading_its_tables(tmp_path: Path) -> None:
    idx_path = tmp_path / "idx"
    _build(idx_path, _corpus(tmp_path, CORPUS_FILES))
    with EmbeddedIndex(idx_path) as idx:
        # Plain views of memory maps: nothing is read until a query touches it.
        def mapped(a: np.ndarray) -> bool:
            while a is not None and not isinstance(a, np.memmap):
                a = a.base  # type: ignore[assignment]
            return isinstance(a, np.memmap)

        tables = [t for s in idx.segments for t in (*s.fp.tables, s.mh)]
        # A keyless table (a grouped table's posts) has no directory file to map.
        assert all(mapped(t.records) and (t.layout.key_bits == 0 or mapped(t.directory)) for t in tables)
    assert os.path.getsize(idx_path / "manifest.json") < 10_000


def test_a_build_of_a_small_index_ends_with_one_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries search every segment: a build merges them when that is cheap (a small index), and
    past the size limit only once there are many."""
    import index.builder as builder

    root = _corpus(tmp_path, CORPUS_FILES)
    one = tmp_path / "one"
    build(one, [DirectorySource(root, BuildLimits())], limits=BuildLimits(segment_bytes=1), progress=False)
    many = tmp_path / "many"
    monkeypatch.setattr(builder, "COMPACT_ALWAYS_BYTES", 0)
    build(many, [DirectorySource(root, BuildLimits())], limits=BuildLimits(segment_bytes=1), progress=False)
    with EmbeddedIndex(one) as a, EmbeddedIndex(many) as b:
        assert len(a.segments) == 1 and 1 < len(b.segments) <= builder.AUTO_COMPACT_SEGMENTS
        assert a.num_docs == b.num_docs == len(CORPUS_FILES)
        text = (root / CORPUS_FILES[0]).read_text()[200:900]
        assert Matcher(a).check(text)
        assert [m.source for m in Matcher(a).check(text)] == [m.source for m in Matcher(b).check(text)]
