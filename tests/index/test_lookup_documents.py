"""Completing common keys for a few documents: the search within each key's range finds exactly
the postings that reading the whole range finds."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import store
from index.builder import build
from index.config import BuildLimits
from index.packed import _MIX as MIX
from index.packed import PackedTable, bits_for, directory_of, key_of, pack, plan
from index.protocol import FingerprintHits
from index.sources import DirectorySource
from index.store import EmbeddedIndex, first_at_least, runs_by_reading, runs_by_search
from tests.conftest import STDLIB


def _table(keys: np.ndarray, doc: np.ndarray) -> PackedTable:
    order = np.lexsort((doc, keys))
    keys, doc = keys[order], doc[order]
    layout = plan(len(keys), 48, [("doc", bits_for(int(doc.max())))])
    records = np.frombuffer(b"".join(pack(keys, {"doc": doc}, layout)), dtype=np.uint8)
    return PackedTable(directory_of(keys, layout), records, len(keys), layout)


def _random_table(
    seed: int, n_keys: int, size: int, doc_max: int
) -> tuple[np.random.Generator, PackedTable, np.ndarray, np.ndarray]:
    """A table of ``n_keys`` random keys with up to ``size`` postings each (random documents up
    to ``doc_max``), its keys' ranges, and the generator to draw targets from."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(rng.integers(0, 2**48, n_keys, dtype=np.uint64), rng.integers(1, size + 1, n_keys))
    table = _table(keys, rng.integers(0, doc_max + 1, len(keys), dtype=np.uint64))
    lo, hi = table.ranges(np.unique(keys))
    return rng, table, lo, hi


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_keys=st.integers(1, 6),
    size=st.sampled_from([1, 20, 3000]),
    doc_max=st.sampled_from([0, 3, 60_000]),
)
def test_first_at_least_is_searchsorted_in_each_range(
    seed: int, n_keys: int, size: int, doc_max: int
) -> None:
    rng, table, lo, hi = _random_table(seed, n_keys, size, doc_max)
    pick = rng.integers(0, len(lo), 50)
    target = rng.integers(0, doc_max + 2, 50)
    # Ranges cut at random points inside a key's range are sorted too.
    cut = lo[pick] + rng.integers(0, hi[pick] - lo[pick] + 1)
    start, stop = np.r_[lo[pick], lo[pick]], np.r_[hi[pick], cut]
    target = np.r_[target, target]
    got = first_at_least(table, "doc", start, stop, target)
    docs = table.field("doc", np.arange(len(table)))
    want = [
        a + np.searchsorted(docs[a:b], t, side="left") for a, b, t in zip(start, stop, target, strict=True)
    ]
    assert got.tolist() == want


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_keys=st.integers(1, 6),
    size=st.sampled_from([1, 15, 16, 17, 3000]),
    doc_max=st.sampled_from([0, 3, 60_000]),
)
def test_runs_by_search_find_each_start_and_count_the_run_below_the_end(
    seed: int, n_keys: int, size: int, doc_max: int
) -> None:
    rng, table, lo, hi = _random_table(seed, n_keys, size, doc_max)
    pick = rng.integers(0, len(lo), 50)
    # Targets anywhere (past every value too), runs of any length: none, a few, a key repeated
    # thousands of times in one document, to the end of the range.
    start = rng.integers(0, doc_max + 2, 50)
    end = start + rng.integers(0, 3 + doc_max // 4, 50)
    a, runs = runs_by_search(table, "doc", lo[pick], hi[pick], start, end)
    docs = table.field("doc", np.arange(len(table)))
    ranges = list(zip(lo[pick], hi[pick], strict=True))
    assert a.tolist() == [i + np.searchsorted(docs[i:j], t) for (i, j), t in zip(ranges, start, strict=True)]
    # The run from the start found, to the end of the range at most.
    his = hi[pick].tolist()
    assert runs.tolist() == [np.searchsorted(docs[f:j], t) for f, j, t in zip(a, his, end, strict=True)]


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_keys=st.integers(1, 6),
    size=st.sampled_from([1, 20, 300]),
    doc_max=st.sampled_from([0, 3, 60_000]),
    per=st.integers(1, 5),
)
def test_runs_by_reading_are_the_searched_runs(
    seed: int, n_keys: int, size: int, doc_max: int, per: int
) -> None:
    """Reading the ranges whole finds each target's run as searching does: targets anywhere,
    ``2^width`` (one past any value of the field) included, and ranges cut anywhere."""
    rng, table, lo, hi = _random_table(seed, n_keys, size, doc_max)
    ranges = rng.integers(0, len(lo), 8)
    cut = lo[ranges] + rng.integers(0, hi[ranges] - lo[ranges] + 1)  # a part of a range is sorted
    lo, n = lo[ranges], cut - lo[ranges]
    top = 1 << dict(table.layout.fields)["doc"]
    start = rng.integers(0, top + 1, len(lo) * per)
    end = np.minimum(start + rng.integers(0, 3 + doc_max // 4, len(start)), top)
    a, runs = runs_by_reading(table, "doc", lo, n, start, end)
    pair_lo, pair_hi = np.repeat(lo, per), np.repeat(lo + n, per)
    want = first_at_least(table, "doc", pair_lo, pair_hi, start)
    assert a.tolist() == want.tolist()
    assert runs.tolist() == runs_by_search(table, "doc", pair_lo, pair_hi, start, end)[1].tolist()


def _every_posting(idx: EmbeddedIndex, keys: np.ndarray, docs: np.ndarray) -> FingerprintHits:
    """The postings of ``keys`` in ``docs`` by reading every posting of every key (lines are
    -1 here as in every lookup: they are resolved for reported matches only)."""
    cols: list[list[int]] = [[], [], [], [], [], []]
    for si, seg in enumerate(idx.segments):
        lo, hi = seg.fp.ranges(key_of(keys, seg.key_bits))
        for k, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            for r in range(a, b):
                at = np.array([r])
                doc, pos = (int(v[0]) for v in seg.doc_pos("fp", at))
                ref = doc | (si << 32)
                if ref in set(docs.tolist()) and doc not in seg.deleted:
                    meta = int(seg.fp.field("conc", at)[0]) | (int(seg.fp.field("flag", at)[0]) << 16)
                    for c, v in zip(cols, (k, ref, pos, -1, meta, b - a), strict=True):
                        c.append(v)
    return FingerprintHits(*[np.asarray(c, dtype=np.int64) for c in cols])


def _hashes_of(stored: np.ndarray, key_bits: int) -> np.ndarray:
    """64-bit hashes whose stored key (`key_of`, a bijective mix) is each of ``stored``."""
    mixed = np.asarray(stored, dtype=np.uint64) << np.uint64(64 - key_bits)
    with np.errstate(over="ignore"):
        h = mixed * np.uint64(pow(int(MIX), -1, 1 << 64))
    out: np.ndarray = h ^ (h >> np.uint64(32))  # x ^ (x >> 32) is its own inverse
    return out


@pytest.mark.parametrize("read_whole", [0, store._READ_WHOLE])  # searched, read whole
def test_lookup_in_documents_finds_every_posting_of_the_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_whole: int
) -> None:
    monkeypatch.setattr(store, "_READ_WHOLE", read_whole)
    root = tmp_path / "corpus"
    # Two copies of a file and a third that shares its licence-like header: keys with postings
    # in several documents, some repeated within a document.
    header = "".join(f"# Copyright line {i} of the shared header, all rights reserved.\n" for i in range(12))
    for name, rel in [("a.py", "json/decoder.py"), ("b.py", "json/decoder.py"), ("c.py", "textwrap.py")]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(header + (STDLIB / rel).read_text())
    shutil.copy(STDLIB / "shlex.py", root / "d.py")
    build(tmp_path / "idx", [DirectorySource(root, BuildLimits())], progress=False)
    with EmbeddedIndex(tmp_path / "idx") as idx:
        seg = idx.segments[0]
        every = np.arange(len(seg.fp))
        stored = seg.fp.keys(every)
        # Hashes whose stored key is each distinct key in the table, one unknown, one repeated.
        picked = np.r_[np.unique(stored)[::7], stored[:1]]
        hashes = _hashes_of(np.r_[picked, np.uint64(12345)], seg.key_bits)
        assert key_of(hashes, seg.key_bits).tolist()[:-1] == picked.tolist()
        # The keys in table order with one repeated (searched once), none repeated in the
        # opposite order, and each one twice, interleaved.
        distinct = hashes[1:-1][::-1]
        for keys in (hashes, distinct, np.r_[distinct, distinct]):
            for docs in ([0], [1, 2], [0, 1, 2, 3], [3, 99]):
                wanted = np.asarray(docs, dtype=np.int64)
                want = _every_posting(idx, keys, wanted)
                assert len(want.qi) > 0 or docs == [3, 99]
                # Cold, after a lookup of these keys and more (its ranges are reused), and after
                # a lookup of other keys only (they are not).
                for before in (None, np.r_[keys[::-1], keys + np.uint64(1)], keys[:1] + np.uint64(1)):
                    if before is not None:
                        idx.lookup_fingerprints(before, 512)
                    got = idx.lookup_in_documents(keys, wanted)
                    for name in ("qi", "doc", "pos", "line", "meta", "df"):
                        assert getattr(got, name).tolist() == getattr(want, name).tolist(), (docs, name)
