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
from pathlib import Path

import numpy as np

from .packed import Layout, PackedTable, PackedWriter, bits_for, plan
from .segment import CONC_BITS, FIELDS, ORDER, KeyFilesWriter, doc_of

# Records decoded per step: their columns, keys, sort order and sorted copies take ~250 bytes a
# record (a 100 MB build peaked at 1.0 GB RSS with 4M records a step).
MERGE_RECORDS = 1_000_000


@dataclass
class MergeInput:
    table: PackedTable
    remap: np.ndarray  # int64 new document number of each old one, -1 for dropped documents
    starts: np.ndarray  # int64 first token number of each old document (Segment.starts)

    def docs(self, at: np.ndarray) -> np.ndarray:
        """Old document (int64) of records whose token numbers are ``at``."""
        return doc_of(self.starts, at)


def _live_count(inp: MergeInput, step: int) -> int:
    n = 0
    for start in range(0, len(inp.table), step):
        at = inp.table.field("at", np.arange(start, min(len(inp.table), start + step)))
        n += int((inp.remap[inp.docs(at)] >= 0).sum())
    return n


def _cuts(inputs: list[MergeInput], step: int) -> list[np.ndarray]:
    """Per input, the record numbers where the merge's key ranges start (and its length): ranges
    of at most about ``step`` records in all. Winnowed keys are minima, so not uniform: the
    ranges are cut at keys sampled from the inputs every ``step / 2 / len(inputs)`` records."""
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
    bounds = candidates[chosen]
    return [np.r_[0, inp.table.lower_bound(bounds), len(inp.table)] for inp in inputs]


def merged_table(
    table: str, inputs: list[MergeInput], starts: np.ndarray, budget: int | None = None
) -> Callable[[Path, str, int], Layout]:
    """A table source for `write_segment` that merges ``inputs`` (documents renumbered in order,
    whose first tokens are ``starts``, the total at the end) while it writes."""

    def write(directory: Path, name: str, key_bits: int) -> Layout:
        step = budget or MERGE_RECORDS
        n = sum(_live_count(inp, step) for inp in inputs)
        widths = []
        for field in FIELDS[table]:
            if field == "at":
                widths.append((field, bits_for(max(int(starts[-1]) - 1, 0))))
            elif field == "conc":
                widths.append((field, CONC_BITS))
            else:  # the inputs' widths bound the values
                widths.append((field, max([dict(i.table.layout.fields)[field] for i in inputs] or [1])))
        layout = plan(n, key_bits, widths)
        writer = PackedWriter(directory / f"{name}_rec.npy", n, layout)
        for inp in inputs:
            if inp.table.layout.key_bits != key_bits:
                raise ValueError("tables with different key widths cannot be merged")
        cuts = _cuts(inputs, step)
        files = KeyFilesWriter(starts) if table == "fp" else None
        for r in range(len(cuts[0]) - 1) if cuts else ():
            keys: list[np.ndarray] = []
            cols: dict[str, list[np.ndarray]] = {f: [] for f in FIELDS[table]}
            for inp, cut in zip(inputs, cuts, strict=True):
                idx = np.arange(cut[r], cut[r + 1])
                if not len(idx):
                    continue
                values = inp.table.columns(idx)
                at = values["at"].astype(np.int64)
                old_doc = inp.docs(at)
                new_doc = inp.remap[old_doc]
                keep = new_doc >= 0
                # The same position in the document's new place.
                values["at"] = (at - inp.starts[old_doc] + starts[np.maximum(new_doc, 0)]).astype(np.uint64)
                keys.append(inp.table.keys(idx)[keep])
                for f in cols:
                    cols[f].append(values[f][keep])
            if not keys:
                continue
            k = np.concatenate(keys)
            c = {f: np.concatenate(v) for f, v in cols.items()}
            order = np.lexsort((*(c[f] for f in reversed(ORDER[table])), k))
            k, c = k[order], {f: v[order] for f, v in c.items()}
            writer.add(k, c)
            if files is not None:
                files.add(k, c["at"])
        np.save(directory / f"{name}_dir.npy", writer.close())
        if files is not None:
            files.save(directory)
        return layout

    return write
