"""The fingerprint table with its repeated keys stored once.

Real code repeats itself: in the first 100 MB of the gigabyte benchmark (Linux C) 42 % of the
fingerprint postings share their key with another posting (licence headers, register tables,
drivers copied from one another), 5 postings a shared key on average. A packed table stores a
key's suffix (28-31 bits) in every record; here a key held by one posting keeps such a record
(``singles``), and a key held by more is stored once (``groups``: its suffix and the number of
its first posting) above keyless records of its postings (``posts``). That is 8.4 bits a posting
less at 100 MB, and what a lookup reads is unchanged.

Record numbers run over the singles first, then the posts: ``r < len(singles)`` is the singles'
record ``r``, any other the posts' record ``r - len(singles)``. A key's postings are one range of
record numbers in either part, sorted by token number, so `GroupedTable.ranges` and `field` are
interchangeable with `PackedTable`'s for a lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError

from .packed import Layout, PackedTable, PackedWriter, bits_for, plan

PARTS = ("singles", "groups", "posts")
_SUFFIX = {"singles": "", "groups": "g", "posts": "p"}  # the singles keep the plain table's names


def _file(name: str, part: str, kind: str) -> str:
    """File name of a part's ``kind`` ("dir" or "rec") of grouped table ``name``."""
    return f"{name}{_SUFFIX[part]}_{kind}.npy"


def files(name: str) -> tuple[str, ...]:
    """The files of table ``name`` (the posts are keyless: no directory)."""
    return tuple(_file(name, p, k) for p in PARTS for k in ("dir", "rec") if (p, k) != ("posts", "dir"))


class WholeKeys:
    """Re-cuts batches of records sorted by key so that each key's records come out together:
    `take` returns the records up to the last key given so far and holds that key's, which may
    go on in the next batch; `rest` returns what it holds."""

    def __init__(self) -> None:
        self._held: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def take(
        self, keys: np.ndarray, columns: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self._held is not None:
            held_keys, held = self._held
            keys = np.concatenate([held_keys, keys])
            columns = {n: np.concatenate([held[n], columns[n]]) for n in held}
        cut = int(np.searchsorted(keys, keys[-1], side="left")) if len(keys) else 0
        self._held = keys[cut:], {n: v[cut:] for n, v in columns.items()}
        return keys[:cut], {n: v[:cut] for n, v in columns.items()}

    def rest(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        held, self._held = self._held, None
        return held


def key_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first record of each run of equal sorted ``keys``, and the run's length."""
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return first, np.diff(np.r_[first, len(keys)])


def counts_of(keys: np.ndarray) -> tuple[int, int, int]:
    """(singles, groups, posts) of sorted stored ``keys``."""
    if not len(keys):
        return 0, 0, 0
    _, count = key_runs(keys)
    shared = count > 1
    return int((~shared).sum()), int(shared.sum()), int(count[shared].sum())


class GroupedWriter:
    """Writes a grouped table from batches of postings sorted by (key, token number) whose
    number of singles, groups and posts (`counts_of` over all of them) is known in advance; a
    key may continue into the next batch."""

    def __init__(
        self,
        directory: Path,
        name: str,
        counts: tuple[int, int, int],
        key_bits: int,
        fields: Sequence[tuple[str, int]],
    ) -> None:
        n1, m, n2 = counts
        self.directory, self.name = directory, name
        self.fields = tuple(f for f, _ in fields)
        self.layouts = {
            "singles": plan(n1, key_bits, fields),
            "groups": plan(m, key_bits, [("first", bits_for(max(n2 - 1, 0)))]),
            # Keyless: 0 key bits, one bucket.
            "posts": Layout(0, 0, tuple(fields)),
        }
        self._writers = {
            part: PackedWriter(directory / _file(name, part, "rec"), size, self.layouts[part])
            for part, size in zip(PARTS, counts, strict=True)
        }
        self._posted = 0
        self._whole = WholeKeys()

    def add(self, keys: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        self._write(*self._whole.take(keys, {f: np.asarray(columns[f]) for f in self.fields}))

    def _write(self, keys: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        if not len(keys):
            return
        first, count = key_runs(keys)
        single = np.repeat(count == 1, count)
        self._writers["singles"].add(keys[single], {f: v[single] for f, v in cols.items()})
        shared = count > 1
        sizes = count[shared]
        starts = self._posted + np.cumsum(sizes) - sizes
        self._writers["groups"].add(keys[first[shared]], {"first": starts.astype(np.uint64)})
        posted = ~single
        posts = {f: v[posted] for f, v in cols.items()}
        self._writers["posts"].add(np.zeros(int(posted.sum()), dtype=np.uint64), posts)
        self._posted += int(sizes.sum())

    def close(self) -> dict[str, Any]:
        """Finish the files; returns the table's layouts (for ``segment.json``)."""
        rest = self._whole.rest()
        if rest is not None:
            self._write(*rest)
        for part, writer in self._writers.items():
            directory = writer.close()
            if part != "posts":  # keyless: its directory is [0, n]
                np.save(self.directory / _file(self.name, part, "dir"), directory)
        return {part: layout.to_json() for part, layout in self.layouts.items()}


class GroupedTable:
    """Read side: the three packed tables behind the interface of one `PackedTable`."""

    def __init__(self, singles: PackedTable, groups: PackedTable, posts: PackedTable) -> None:
        if tuple(n for n, _ in groups.layout.fields) != ("first",) or len(posts) < 2 * len(groups):
            raise IndexCorruptError("a grouped posting table is inconsistent; rebuild the index")
        self.singles, self.groups, self.posts = singles, groups, posts
        self.layout = singles.layout
        self.n1, self.n2, self.m = len(singles), len(posts), len(groups)
        self.n = self.n1 + self.n2
        self._first: np.ndarray | None = None

    @property
    def tables(self) -> tuple[PackedTable, ...]:
        return self.singles, self.groups, self.posts

    def __len__(self) -> int:
        return self.n

    def _starts(self, group: np.ndarray) -> np.ndarray:
        """The first post of each group number (``n2`` for the one past the last)."""
        group = np.asarray(group, dtype=np.int64)
        if self.m == 0:
            return np.full(len(group), self.n2, dtype=np.int64)
        first = self.groups.field("first", np.minimum(group, self.m - 1)).astype(np.int64)
        return np.where(group >= self.m, self.n2, first)

    def field(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Values (uint64) of field ``name`` of records ``idx``."""
        return self.fields((name,), idx)[0]

    def fields(self, names: Sequence[str], idx: np.ndarray) -> list[np.ndarray]:
        """Values (uint64) of each field of ``names`` of records ``idx``, with the records split
        between the singles and the posts once (a lookup reads three fields of its postings,
        and the split was a dozen numpy calls)."""
        idx = np.asarray(idx, dtype=np.int64)
        single = idx < self.n1
        # A key's postings lie in one part: most reads need no split.
        if self.n2 == 0 or single.all():
            return self.singles.fields(names, idx)
        if not single.any():
            return self.posts.fields(names, idx - self.n1)
        posted = ~single
        ones = self.singles.fields(names, idx[single])
        posts = self.posts.fields(names, idx[posted] - self.n1)
        out = []
        for one, post in zip(ones, posts, strict=True):
            values = np.empty(len(idx), dtype=np.uint64)
            values[single] = one
            values[posted] = post
            out.append(values)
        return out

    def columns(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        names = [name for name, _ in self.layout.fields]
        return dict(zip(names, self.fields(names, idx), strict=True))

    def ranges(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[lo, hi)`` record range of every stored key in ``keys`` (empty where absent)."""
        # A key is in the singles (one record) or in the groups (once), never in both: a search
        # of each part's first record at or after the key settles its range (the second search
        # of `PackedTable.ranges`, for the end of a run of equal keys, was half the lookup's
        # time at 1 GB), and only the keys not among the singles are searched in the groups.
        keys = np.asarray(keys, dtype=np.uint64)
        lo, single = self.singles.find(keys)
        hi = lo + single
        rest = (~single).nonzero()[0]
        if len(rest) and self.m:
            group, grouped = self.groups.find(keys[rest])
            found, group = rest[grouped], group[grouped]
            if len(found):
                starts = self._starts(np.concatenate((group, group + 1)))
                lo[found] = self.n1 + starts[: len(found)]
                hi[found] = self.n1 + starts[len(found) :]
        return lo, hi

    def lower_bound(self, keys: np.ndarray) -> np.ndarray:
        """How many records have a stored key below each of ``keys``."""
        below: np.ndarray = self.singles.lower_bound(keys) + self._starts(self.groups.lower_bound(keys))
        return below

    def records_between(self, lo: int | None, hi: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Record numbers and stored keys of the records with a key in ``[lo, hi)`` (None: no
        bound), the singles' then the posts'."""
        idx, keys = self.singles.records_between(lo, hi)
        g, gkeys = self.groups.records_between(lo, hi)
        if not len(g):
            return idx, keys
        starts = self._starts(np.r_[g, g[-1] + 1])
        sizes = np.diff(starts)
        posts = np.arange(starts[0], starts[-1], dtype=np.int64) + self.n1
        return np.r_[idx, posts], np.r_[keys, np.repeat(gkeys, sizes)]

    def _all_first(self) -> np.ndarray:
        if self._first is None:
            self._first = self._starts(np.arange(self.m + 1))
        return self._first

    def keys(self, idx: np.ndarray) -> np.ndarray:
        """Stored keys of records ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty(len(idx), dtype=np.uint64)
        single = idx < self.n1
        out[single] = self.singles.keys(idx[single])
        group = np.searchsorted(self._all_first(), idx[~single] - self.n1, side="right") - 1
        out[~single] = self.groups.keys(group)
        return out

    def all_keys(self) -> np.ndarray:
        """The stored key of every record, in record order."""
        keys: np.ndarray = np.r_[
            self.singles.all_keys(), np.repeat(self.groups.all_keys(), np.diff(self._all_first()))
        ]
        return keys


def open_grouped(directory: Path, name: str, layouts: object, n: int) -> GroupedTable:
    """The grouped table ``name`` of a segment directory holding ``n`` records in all."""
    if not isinstance(layouts, dict) or set(layouts) != set(PARTS):
        raise IndexCorruptError(f"a grouped table's layouts are malformed ({layouts!r}); rebuild the index")
    parsed = {part: Layout.from_json(layouts[part]) for part in PARTS}
    dirs = {
        p: np.asarray(np.load(directory / _file(name, p, "dir"), mmap_mode="r"))
        for p in ("singles", "groups")
    }
    n1, m = (int(dirs[p][-1]) if len(dirs[p]) else 0 for p in ("singles", "groups"))
    if not 0 <= n1 <= n:
        raise IndexCorruptError(f"a grouped table in {directory} is inconsistent; rebuild the index")
    dirs["posts"] = np.array([0, n - n1], dtype=np.uint64)
    counts = {"singles": n1, "groups": m, "posts": n - n1}
    tables = {
        part: PackedTable(
            dirs[part],
            np.asarray(np.load(directory / _file(name, part, "rec"), mmap_mode="r")),
            counts[part],
            parsed[part],
        )
        for part in PARTS
    }
    return GroupedTable(tables["singles"], tables["groups"], tables["posts"])
