"""Merging sorted packed tables into one, a key range at a time, in bounded memory.

Every segment's table is sorted by (key, document, position), and a merge renumbers documents
(and so token numbers) in segment order, so the merged table is each key range's records from
every input, inputs in order, re-sorted by (key, new document, position). The key space is cut
into ranges of about ``MERGE_RECORDS`` records, and only one range's records are ever decoded:
the peak memory of a merge does not grow with the index, but with the postings of the most
common key (they are never split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .grouped import GroupedTable, GroupedWriter, counts_of
from .packed import PackedTable, bits_for
from .segment import CONC_BITS, FIELDS, GROUPED, KeyFilesWriter, PlainWriter, doc_of

# Records decoded per step: their columns, keys, sort order and sorted copies take ~250 bytes a
# record (a 100 MB build peaked at 1.0 GB RSS with 4M records a step).
MERGE_RECORDS = 1_000_000


@dataclass
class MergeInput:
    table: PackedTable | GroupedTable
    remap: np.ndarray  # int64 new document number of each old one, -1 for dropped documents
    starts: np.ndarray  # int64 first token number of each old document (Segment.starts)

    def docs(self, at: np.ndarray) -> np.ndarray:
        """Old document (int64) of records whose token numbers are ``at``."""
        return doc_of(self.starts, at)

    def kept(self, idx: np.ndarray) -> np.ndarray:
        """Which of records ``idx`` belong to documents the merge keeps."""
        kept: np.ndarray = self.remap[self.docs(self.table.field("at", idx))] >= 0
        return kept

    @cached_property
    def first(self) -> int | None:
        """The new number of the first document when every document is kept in order and
        numbered on from it (a build's segments merged: no deletions), else None; then a record
        keeps its position relative to the first token, and no record's document is looked up
        (a search per record, a seventh of a 100 MB merge's CPU time)."""
        n = len(self.remap)
        if not n or self.remap[0] < 0:
            return None
        whole = np.array_equal(self.remap, np.arange(n, dtype=np.int64) + self.remap[0])
        return int(self.remap[0]) if whole else None


def _live_count(inp: MergeInput, step: int) -> int:
    if inp.first is not None:
        return len(inp.table)
    n = 0
    for start in range(0, len(inp.table), step):
        n += int(inp.kept(np.arange(start, min(len(inp.table), start + step))).sum())
    return n


def _cuts(inputs: list[MergeInput], step: int) -> list[int]:
    """Stored keys that cut the key space into the merge's ranges: at most about ``step``
    records of all inputs in a range. Winnowed keys are minima, so not uniform: the ranges are
    cut at keys sampled from the inputs every ``step / 2 / len(inputs)`` records."""
    if not inputs:
        return []
    stride = max(1, step // (2 * len(inputs)))
    samples = [inp.table.keys(np.arange(0, len(inp.table), stride)) for inp in inputs]
    candidates = np.unique(np.concatenate(samples))
    # Records before each candidate key, in all inputs together.
    before: np.ndarray = np.sum([inp.table.lower_bound(candidates) for inp in inputs], axis=0)
    chosen, last = [], 0
    for i in range(1, len(candidates)):
        # Cut before candidate i-1 if taking candidate i too would pass the budget.
        if before[i] - last > step and before[i - 1] > last:
            chosen.append(i - 1)
            last = int(before[i - 1])
    return [int(k) for k in candidates[chosen]]


def _live_keys(inputs: list[MergeInput], lo: int | None, hi: int | None) -> np.ndarray:
    """The stored keys, sorted, of the kept records of all inputs with a key in ``[lo, hi)``."""
    parts = []
    for inp in inputs:
        idx, keys = inp.table.records_between(lo, hi)
        if len(idx) and (inp.remap < 0).any():
            keys = keys[inp.kept(idx)]
        parts.append(keys)
    return np.sort(np.concatenate([np.empty(0, dtype=np.uint64), *parts]))


def _merged_range(
    table: str, inputs: list[MergeInput], starts: np.ndarray, lo: int | None, hi: int | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The kept records of all inputs with a key in ``[lo, hi)``, renumbered and sorted by
    (key, new token number)."""
    keys: list[np.ndarray] = [np.empty(0, dtype=np.uint64)]
    cols: dict[str, list[np.ndarray]] = {f: [np.empty(0, dtype=np.uint64)] for f in FIELDS[table]}
    for inp in inputs:
        idx, stored = inp.table.records_between(lo, hi)
        if not len(idx):
            continue
        values = inp.table.columns(idx)
        keep: slice | np.ndarray
        if inp.first is not None:
            values["at"] += np.uint64(starts[inp.first] - inp.starts[0])
            keep = slice(None)  # every record, as a view
        else:
            at = values["at"].astype(np.int64)
            old_doc = inp.docs(at)
            new_doc = inp.remap[old_doc]
            keep = new_doc >= 0
            # The same position in the document's new place.
            values["at"] = (at - inp.starts[old_doc] + starts[np.maximum(new_doc, 0)]).astype(np.uint64)
        keys.append(stored[keep])
        for f in cols:
            cols[f].append(values[f][keep])
    k = np.concatenate(keys)
    c = {f: np.concatenate(v) for f, v in cols.items()}
    # Each input's records come sorted by (key, token number) — a grouped table's in two such
    # runs, whose keys differ — and the inputs' new token numbers follow one another, so a
    # stable sort by key alone gives (key, new token number): runs merge in a third of the
    # time of a two-key lexsort.
    order = np.argsort(k, kind="stable")
    return k[order], {f: v[order] for f, v in c.items()}


def merged_table(
    table: str, inputs: list[MergeInput], starts: np.ndarray, budget: int | None = None
) -> Callable[[Path, str, int], tuple[dict[str, Any], int]]:
    """A table source for `write_segment` that merges ``inputs`` (documents renumbered in order,
    whose first tokens are ``starts``, the total at the end) while it writes."""

    def write(directory: Path, name: str, key_bits: int) -> tuple[dict[str, Any], int]:
        step = budget or MERGE_RECORDS
        for inp in inputs:
            if inp.table.layout.key_bits != key_bits:
                raise ValueError("tables with different key widths cannot be merged")
        widths = []
        for field in FIELDS[table]:
            if field == "at":
                widths.append((field, bits_for(max(int(starts[-1]) - 1, 0))))
            elif field == "conc":
                widths.append((field, CONC_BITS))
            else:  # the inputs' widths bound the values
                widths.append((field, max([dict(i.table.layout.fields)[field] for i in inputs] or [1])))
        bounds = _cuts(inputs, step)
        ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
        writer: GroupedWriter | PlainWriter
        if table in GROUPED:
            # A grouped table's parts are sized before it is written: a first pass counts the
            # keys held once and more than once (keys only, ~1/4 of a range's decoding).
            counts = np.zeros(3, dtype=np.int64)
            for lo, hi in ranges:
                counts += counts_of(_live_keys(inputs, lo, hi))
            n1, m, n2 = (int(c) for c in counts)
            writer, n = GroupedWriter(directory, name, (n1, m, n2), key_bits, widths), n1 + n2
        else:
            n = sum(_live_count(inp, step) for inp in inputs)
            writer = PlainWriter(directory, name, n, key_bits, widths)
        files = KeyFilesWriter(starts) if table == "fp" else None
        for lo, hi in ranges:
            k, c = _merged_range(table, inputs, starts, lo, hi)
            if not len(k):
                continue
            writer.add(k, c)
            if files is not None:
                files.add(k, c["at"])
        layouts = writer.close()
        if files is not None:
            files.save(directory)
        return layouts, n

    return write
