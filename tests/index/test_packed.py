"""The packed posting tables: any keys and fields round-trip, lookups find exactly the records
of each key, and an index of the format before them is told to be rebuilt."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import packed
from index.packed import KEY_BITS, PackedTable, bits_for, directory_of, key_of, pack, packed_size, plan
from stacklens.errors import IndexCorruptError

_FIELDS = ("doc", "pos", "conc")


def _table(keys: np.ndarray, cols: dict[str, np.ndarray], key_bits: int) -> PackedTable:
    order = np.lexsort((cols["doc"], keys))
    keys = keys[order]
    cols = {n: c[order] for n, c in cols.items()}
    widths = [(n, 16 if n == "conc" else bits_for(int(cols[n].max()) if len(keys) else 0)) for n in _FIELDS]
    layout = plan(len(keys), key_bits, widths)
    records = np.frombuffer(b"".join(pack(keys, cols, layout)), dtype=np.uint8)
    assert len(records) == packed_size(len(keys), layout)
    return PackedTable(directory_of(keys, layout), records, len(keys), layout)


@settings(max_examples=60, deadline=None)
@given(
    hashes=st.lists(st.integers(0, 2**64 - 1), max_size=300),
    repeats=st.integers(1, 4),
    doc_max=st.sampled_from([0, 1, 1000, 2**32 - 1]),
    key_bits=st.sampled_from([32, KEY_BITS, 56]),
    seed=st.integers(0, 1000),
)
def test_packed_postings_round_trip(
    hashes: list[int], repeats: int, doc_max: int, key_bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    h = np.repeat(np.asarray(hashes, dtype=np.uint64), repeats)
    keys = key_of(h, key_bits)
    cols = {
        "doc": rng.integers(0, doc_max, len(h), endpoint=True, dtype=np.uint64),
        "pos": rng.integers(0, 2**20, len(h), dtype=np.uint64),
        "conc": rng.integers(0, 2**16, len(h), dtype=np.uint64),
    }
    table = _table(keys, cols, key_bits)
    order = np.lexsort((cols["doc"], keys))
    every = np.arange(len(h))
    assert np.array_equal(table.all_keys(), keys[order])
    assert np.array_equal(table.keys(every), keys[order])
    for name, values in table.columns(every).items():
        assert np.array_equal(values, cols[name][order]), name
    # Every present key finds exactly its records; absent ones (neighbours) find none.
    probe = np.concatenate([keys, keys + np.uint64(1), keys - np.uint64(1), np.array([0], np.uint64)])
    probe &= np.uint64((1 << key_bits) - 1)
    sorted_keys = keys[order]
    for scan_reads in (0, 10**9):  # the buckets bisected, read whole
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(packed, "_SCAN_READS", scan_reads)
            lo, hi = table.ranges(probe)
        assert np.array_equal(lo, np.searchsorted(sorted_keys, probe, side="left"))
        assert np.array_equal(hi, np.searchsorted(sorted_keys, probe, side="right"))


@pytest.mark.parametrize("doc_bits", [1, 20, 37, 38, 40])
def test_fields_read_together_are_the_fields_read_one_by_one(doc_bits: int) -> None:
    """Fields within one 57-bit span come from one read of each record (any order, the suffix
    too, from any record, the last one included); wider spans fall back to a read a field. With
    ``pos`` 20 bits wide, ``doc`` and ``pos`` span 57 bits at 37 and more from 38 on."""
    rng = np.random.default_rng(doc_bits)
    n = 200
    keys = key_of(rng.integers(0, 2**63, n, dtype=np.uint64))
    cols = {
        "doc": np.r_[2**doc_bits - 1, rng.integers(0, 2**doc_bits, n - 1, dtype=np.uint64)].astype(np.uint64),
        "pos": np.r_[2**20 - 1, rng.integers(0, 2**20, n - 1, dtype=np.uint64)].astype(np.uint64),
        "conc": rng.integers(0, 2**16, n, dtype=np.uint64),
    }
    table = _table(keys, cols, KEY_BITS)
    rows = np.r_[rng.integers(0, n, 100), n - 1]
    every = [*_FIELDS, "suffix"]
    for k in range(1, len(every) + 1):
        for names in itertools.combinations(every, k):
            for order in (names, names[::-1]):
                got = table.fields(order, rows)
                assert [g.tolist() for g in got] == [table.field(name, rows).tolist() for name in order]


def test_a_field_too_wide_for_its_layout_is_refused() -> None:
    keys = np.array([1, 2], dtype=np.uint64)
    layout = plan(2, KEY_BITS, [("doc", 1)])
    with pytest.raises(ValueError, match="does not fit"):
        b"".join(pack(keys, {"doc": np.array([0, 2], dtype=np.uint64)}, layout))


def test_keys_keep_48_bits() -> None:
    """Two hashes that share their top 32 bits (one stored key in format 2) are two keys."""
    a, b = np.uint64(0xDEADBEEF_0000_0000), np.uint64(0xDEADBEEF_0001_0000)
    assert a >> np.uint64(32) == b >> np.uint64(32)
    assert key_of(np.array([a]))[0] != key_of(np.array([b]))[0]


def test_stored_keys_fill_the_buckets_evenly() -> None:
    """Winnowed hashes are window minima, crowded at the low end; their stored keys are not."""
    rng = np.random.default_rng(5)
    minima = rng.integers(0, 2**63, (20_000, 11), dtype=np.uint64).min(axis=1) * np.uint64(2)
    quarters = np.bincount((key_of(minima) >> np.uint64(KEY_BITS - 2)).astype(np.int64), minlength=4)
    assert quarters.min() > 0.9 * len(minima) / 4, quarters
    raw = np.bincount((minima >> np.uint64(62)).astype(np.int64), minlength=4)
    assert raw[0] > 0.9 * len(minima)  # what format 3 stored


@pytest.mark.parametrize(
    ("version", "why"),
    [(2, "48 bits"), (3, "line table"), (4, "stored once")],  # each older format names what changed
)
def test_an_index_of_an_older_format_must_be_rebuilt(tmp_path: Path, version: int, why: str) -> None:
    from index.manifest import FORMAT_VERSION
    from index.store import EmbeddedIndex
    from index.writer import IndexWriter

    IndexWriter(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["version"] = version
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    wanted = (
        f"format version {version}, this stacklens reads version {FORMAT_VERSION}; "
        f"rebuild it: `code-search build.*{why}"
    )
    with pytest.raises(IndexCorruptError, match=wanted):
        EmbeddedIndex(tmp_path / "idx")
