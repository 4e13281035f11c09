"""The grouped fingerprint table: whatever the keys' multiplicities and however the postings
come in batches, it answers every read exactly as one packed table of the same postings does,
and stores a shared key once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import packed
from index.grouped import GroupedTable, GroupedWriter, counts_of, open_grouped
from index.packed import KEY_BITS, PackedTable, bits_for, directory_of, key_of, pack, plan
from stacklens.errors import IndexCorruptError

_FIELDS = ("at", "flag")


def _sorted(keys: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    order = np.lexsort((at, keys))
    return keys[order], {"at": at[order], "flag": at[order] & np.uint64(1)}


def _widths(cols: dict[str, np.ndarray]) -> list[tuple[str, int]]:
    return [(n, bits_for(int(cols[n].max()) if len(cols[n]) else 0)) for n in _FIELDS]


def _reference(keys: np.ndarray, cols: dict[str, np.ndarray]) -> PackedTable:
    layout = plan(len(keys), KEY_BITS, _widths(cols))
    records = np.frombuffer(b"".join(pack(keys, cols, layout)), dtype=np.uint8)
    return PackedTable(directory_of(keys, layout), records, len(keys), layout)


def _grouped(tmp: Path, keys: np.ndarray, cols: dict[str, np.ndarray], cuts: list[int]) -> GroupedTable:
    writer = GroupedWriter(tmp, "fp", counts_of(keys), KEY_BITS, _widths(cols))
    for a, b in zip([0, *cuts], [*cuts, len(keys)], strict=True):
        writer.add(keys[a:b], {n: c[a:b] for n, c in cols.items()})
    layouts = writer.close()
    return open_grouped(tmp, "fp", layouts, len(keys))


@settings(max_examples=60, deadline=None)
@given(
    distinct=st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=60, unique=True),
    multiplicity=st.lists(st.integers(1, 9), min_size=60, max_size=60),
    cuts=st.lists(st.integers(0, 600), max_size=4),
    seed=st.integers(0, 1000),
)
def test_grouped_table_reads_as_the_packed_table_of_the_same_postings(
    tmp_path_factory: pytest.TempPathFactory,
    distinct: list[int],
    multiplicity: list[int],
    cuts: list[int],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    hashes = np.repeat(np.array(distinct, dtype=np.uint64), multiplicity[: len(distinct)])
    keys = key_of(hashes)
    at = rng.permutation(len(keys) * 3)[: len(keys)].astype(np.uint64)
    keys, cols = _sorted(keys, at)
    ref = _reference(keys, cols)
    cut_at = sorted({min(c, len(keys)) for c in cuts})  # batches end anywhere, mid-key too
    table = _grouped(tmp_path_factory.mktemp("g"), keys, cols, cut_at)
    assert len(table) == len(keys)
    n1, m, n2 = counts_of(keys)
    assert (len(table.singles), len(table.groups), len(table.posts)) == (n1, m, n2)
    # Every key, present or not: the same postings in the same order.
    probe = np.r_[np.unique(keys), key_of(rng.integers(0, 2**63, 20, dtype=np.uint64))]
    rlo, rhi = ref.ranges(probe)
    ranges = []
    for scan_reads in (0, 10**9):  # the parts' buckets bisected, read whole: the same ranges
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(packed, "_SCAN_READS", scan_reads)
            ranges.append(table.ranges(probe))
    assert all(np.array_equal(a, b) for a, b in zip(*ranges, strict=True))
    lo, hi = ranges[1]
    assert ((hi - lo) == (rhi - rlo)).all()
    for i in range(len(probe)):
        mine, theirs = np.arange(lo[i], hi[i]), np.arange(rlo[i], rhi[i])
        for name in _FIELDS:
            assert (table.field(name, mine) == ref.field(name, theirs)).all()
        assert (table.keys(mine) == probe[i]).all()
    assert (table.lower_bound(probe) == ref.lower_bound(probe)).all()
    # Record order differs (singles, then posts); the postings are the same.
    every = np.arange(len(table))
    mine_rows = sorted(zip(table.all_keys().tolist(), table.field("at", every).tolist(), strict=True))
    ref_rows = sorted(
        zip(ref.all_keys().tolist(), ref.field("at", np.arange(len(ref))).tolist(), strict=True)
    )
    assert mine_rows == ref_rows
    assert (table.keys(every) == table.all_keys()).all()
    # Several fields at once, of records from both parts in any order, or from one part.
    mixed = rng.permutation(len(table))
    for rows in (mixed, mixed[mixed < len(table.singles)], mixed[mixed >= len(table.singles)]):
        got = table.fields(_FIELDS, rows)
        assert all((g == table.field(n, rows)).all() for g, n in zip(got, _FIELDS, strict=True))
        got = ref.fields(_FIELDS, rows)
        assert all((g == ref.field(n, rows)).all() for g, n in zip(got, _FIELDS, strict=True))
    # A key range reads every record with a key in it, once.
    if len(keys):
        bound = int(keys[len(keys) // 2])
        low, low_keys = table.records_between(None, bound)
        high, high_keys = table.records_between(bound, None)
        assert sorted(np.r_[low, high].tolist()) == every.tolist()
        assert (low_keys < bound).all() and (high_keys >= bound).all()
        assert (table.keys(low) == low_keys).all()


def test_a_shared_key_is_stored_once(tmp_path: Path) -> None:
    keys = key_of(np.repeat(np.arange(1, 101, dtype=np.uint64), [1] * 50 + [20] * 50))
    keys, cols = _sorted(keys, np.arange(len(keys), dtype=np.uint64))
    table = _grouped(tmp_path, keys, cols, [])
    assert (len(table.singles), len(table.groups), len(table.posts)) == (50, 50, 1000)
    # Keyless posts: a record is just its fields.
    assert table.posts.layout.record_bits == sum(w for _, w in _widths(cols))


def test_inconsistent_grouped_tables_are_refused(tmp_path: Path) -> None:
    keys = key_of(np.repeat(np.arange(1, 11, dtype=np.uint64), 3))
    keys, cols = _sorted(keys, np.arange(len(keys), dtype=np.uint64))
    writer = GroupedWriter(tmp_path, "fp", counts_of(keys), KEY_BITS, _widths(cols))
    writer.add(keys, cols)
    layouts = writer.close()
    with pytest.raises(IndexCorruptError, match="rebuild"):
        open_grouped(tmp_path, "fp", layouts, len(keys) + 5)
    with pytest.raises(IndexCorruptError, match="rebuild"):
        open_grouped(tmp_path, "fp", {"singles": layouts["singles"]}, len(keys))
