"""The embedded on-disk index: a manifest naming immutable segments, read by `EmbeddedIndex`
(written by `index.writer.IndexWriter`), and how a lookup reads the postings of its keys.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stacklens.errors import IndexCorruptError, IndexNotFoundError

from .config import FingerprintParams
from .distinct import distinct_first_inverse, distinct_inverse, distinct_values
from .grouped import GroupedTable
from .manifest import manifest_key_bits, read_manifest
from .packed import PackedTable, concat_ranges, key_of
from .protocol import BandHits, FingerprintHits
from .segment import CONC_BITS, Segment

POSTINGS_BUDGET = 2048  # postings one query may read from one table of one segment
# Postings read of a key that more than ``max_postings`` documents share. Such a key (a licence
# header, boilerplate) cannot tell which file a copy came from, but a long run of them is text
# of the corpus all the same: its first few postings are the same files for every key of the
# run, so the run chains there (and reports how common it is) instead of matching nothing.
COMMON_SAMPLE = 8


def gather_postings(
    keys: np.ndarray, query: np.ndarray, max_postings: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into ``keys`` equal to each query key, which query key each belongs to, and
    how many postings each query key has in ``keys`` (more than were read for a sampled key)."""
    lo = np.searchsorted(keys, query, side="left")
    hi = np.searchsorted(keys, query, side="right")
    return gather_ranges(lo, hi, max_postings)


def gather_ranges(
    lo: np.ndarray, hi: np.ndarray, max_postings: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As `gather_postings`, from each query key's range ``[lo, hi)`` of postings."""
    df = hi - lo
    counts = np.where(df > max_postings, np.minimum(df, COMMON_SAMPLE), df)
    total = int(counts.sum())
    if total > POSTINGS_BUDGET:
        # Generic queries touch thousands of postings; the rarest keys carry the attribution,
        # so the most common ones are cut to a sample until the query fits its budget.
        by_rarity = np.argsort(df, kind="stable")
        fits = int(counts[by_rarity].cumsum().searchsorted(POSTINGS_BUDGET, side="right"))
        cut = by_rarity[fits:]
        counts[cut] = np.minimum(counts[cut], COMMON_SAMPLE)
        total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), df
    return concat_ranges(lo, counts), np.arange(len(lo)).repeat(counts), df


_FANOUT = 16  # probes per range and round of `first_at_least`: 4 rounds for 4,000 postings
# Field reads a round of `first_at_least` may spend on more probes per range, when few ranges
# are searched: a round costs ~20 numpy calls whatever its size (0.25 ms for the 8-32 ranges
# of a query's completion at 1 GB, in 4 rounds), and 4,096 reads cost about as much.
_ROUND_READS = 4096


def first_at_least(
    table: PackedTable | GroupedTable, name: str, lo: np.ndarray, hi: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Per i, the first record in ``[lo[i], hi[i])`` whose field ``name`` is at least
    ``target[i]`` (``hi[i]`` if none), where the field is sorted within each range: a search
    with ``_FANOUT - 1`` probes a round or more (up to every record of the widest range, so
    one round, while the round reads at most ``_ROUND_READS``), so a few vectorised reads
    instead of one a halving."""
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    target = np.asarray(target, dtype=np.uint64)
    active = (lo < hi).nonzero()[0]
    while len(active):
        start, stop = lo[active], hi[active]
        # Probes at start + (width * j) // fanout; a fanout of width + 1 probes every record.
        fanout = max(_FANOUT, min(_ROUND_READS // len(active), int((stop - start).max()) + 1))
        steps = np.arange(1, fanout, dtype=np.int64)
        probe = start[:, None] + ((stop - start)[:, None] * steps) // fanout  # in [start, stop)
        below = (table.field(name, probe.ravel()).reshape(probe.shape) < target[active, None]).sum(axis=1)
        # The answer is after the last probe below the target and at most the first one not below.
        rows = np.arange(len(active))
        new_lo = np.where(below > 0, probe[rows, np.maximum(below - 1, 0)] + 1, start)
        new_hi = np.where(below < len(steps), probe[rows, np.minimum(below, len(steps) - 1)], stop)
        lo[active], hi[active] = new_lo, new_hi
        active = active[new_lo < new_hi]
    return lo


def runs_by_search(
    table: PackedTable | GroupedTable,
    name: str,
    lo: np.ndarray,
    hi: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per i, the first record in ``[lo[i], hi[i])`` whose field ``name`` is at least
    ``start[i]`` (`first_at_least`), and how many from there are below ``end[i]`` (``end >=
    start``), where the field ascends within each range: both ends searched at once, one
    search of twice the targets. Searching the ends after the starts (reading 16 records on
    from each, then searching on where a run was longer: a table's key repeated in one file)
    was no faster: completions of the 60 slowest gigabyte probes 0.965-0.979x this way, of
    those ranked 5-30 0.990-0.998x (paired, best of 7-9, shared machine)."""
    m = len(lo)
    # (np.concatenate: np.r_ costs 5 us a call, a tenth of a round of the search)
    both = first_at_least(
        table, name, np.concatenate((lo, lo)), np.concatenate((hi, hi)), np.concatenate((start, end))
    )
    return both[:m], both[m:] - both[:m]


# Postings a completion reads whole rather than searching: keys that the budget sampled (the
# query has many postings) hold a few hundred postings each, and a document that repeats them
# (a table) holds most of them. Reading them costs about what two rounds of the search read
# (completions of the probes ranked 5-40, replayed: searched always 0.44 ms, read whole up to
# 2,048 postings 0.43, 8,192 0.38, 32,768 0.38, 131,072 0.66).
_READ_WHOLE = 8192
_RANK_BITS = 20  # ranges read whole at once, at most 2^20: their number is packed above a field


def runs_by_reading(
    table: PackedTable | GroupedTable,
    name: str,
    lo: np.ndarray,
    n: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`runs_by_search` of the ranges ``[lo[r], lo[r] + n[r])``, each paired
    with ``len(start) // len(lo)`` targets in turn (pair ``i`` with range ``i // per``), by
    reading every record of the ranges: per pair, the first record whose field ``name`` is at
    least ``start[i]`` and how many from there are below ``end[i]`` (``end >= start``), where
    the field ascends within each range. Each value is placed above its range's number, which
    makes the records of all ranges one ascending array, searched once for every target."""
    width = dict(table.layout.fields)[name]
    if len(lo) >= 2**_RANK_BITS or width + _RANK_BITS > 64:
        raise ValueError(f"{len(lo)} ranges of a {width}-bit field do not fit one search")
    per = len(start) // max(len(lo), 1)
    shift = np.uint64(width)
    value = table.field(name, concat_ranges(lo, n))
    ranks = np.arange(len(lo), dtype=np.uint64)
    # A target is at most 2^width (one past any value), so rank << width plus it is at most the
    # next range's first key: a search for it stops at the end of its own range.
    keyed = (ranks.repeat(n) << shift) + value
    base = ranks.repeat(per) << shift
    first = np.searchsorted(keyed, base + np.asarray(start, dtype=np.uint64))
    last = np.searchsorted(keyed, base + np.asarray(end, dtype=np.uint64))
    offset = (n.cumsum() - n).repeat(per)
    a: np.ndarray = lo.repeat(per) + (first - offset)
    return a, last - first


def segment_files(seg: Segment, keys: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Documents of ``seg`` (deleted ones included) holding each of the stored ``keys``, whose
    fingerprint ranges are ``[lo, hi)``: counted from a range of at most ``seg.files_min``
    postings, read from the segment's table for a longer one; each range's length (at least
    its documents) in a segment written before the table."""
    n: np.ndarray = hi.astype(np.int64) - lo.astype(np.int64)
    if seg.files is None:
        return n
    out: np.ndarray = n.copy()
    short = ((n > 1) & (n <= seg.files_min)).nonzero()[0]
    if len(short):
        owner = short.repeat(n[short])
        doc = seg.doc_pos("fp", concat_ranges(lo[short], n[short]))[0]
        # A key's postings are in document order: a new document where the document changes.
        new = np.concatenate(([True], (owner[1:] != owner[:-1]) | (doc[1:] != doc[:-1])))
        out[short] = np.bincount(owner[new], minlength=len(n))[short]
    stored, files = seg.files
    common = (n > seg.files_min).nonzero()[0]
    if len(common) and len(stored):
        at = np.minimum(np.searchsorted(stored, keys[common]), len(stored) - 1)
        found = stored[at] == keys[common]
        out[common[found]] = files[at[found]]
    return out


def _live(
    seg: Segment, si: int, doc: np.ndarray, pos: np.ndarray, qi: np.ndarray, *fields: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Query indices ``qi``, global document references, token positions and ``fields`` of
    postings of segment number ``si`` (documents ``doc``, positions ``pos``), less those of
    deleted documents."""
    doc = doc.astype(np.int64)
    if seg.deleted:
        keep = ~np.isin(doc, list(seg.deleted))
        qi, doc, pos = qi[keep], doc[keep], pos[keep]
        fields = tuple(f[keep] for f in fields)
    return (qi, doc | (si << 32), pos, *fields)


# The fields of a fingerprint posting that a lookup reads: its token number, then the two that
# `_fingerprint_fields` makes its meta of (read together: `GroupedTable.fields`).
_FP_FIELDS = ("at", "conc", "flag")


def _fingerprint_fields(conc: np.ndarray, flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line, meta) of fingerprint records with the fields ``conc`` and ``flag``: the line is
    -1, resolved by `EmbeddedIndex.hit_lines` for the few hits a match reports; meta is the
    concrete hash with the record's flag above it (``FingerprintHits``)."""
    return np.full(len(conc), -1, dtype=np.int64), conc | (flag << np.uint64(16))


def _columns(parts: Sequence[tuple[np.ndarray, ...]], n: int) -> list[np.ndarray]:
    if not parts:
        return [np.empty(0, dtype=np.int64)] * n
    if len(parts) == 1:  # one segment's (new arrays): cast where needed, not copied twice
        return [np.asarray(c, dtype=np.int64) for c in parts[0]]
    return [np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(n)]


class EmbeddedIndex:
    """A read-only view of an on-disk index as of the manifest read at open."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise IndexNotFoundError(
                f"no index at {self.path}: build one with `code-search build --index {self.path} SOURCE...`"
            )
        self.manifest = read_manifest(self.path)
        self.key_bits = manifest_key_bits(self.manifest, self.path)
        try:
            self.params = FingerprintParams(**self.manifest["params"])
        except (TypeError, ValueError) as exc:
            raise IndexCorruptError(f"the index at {self.path} has invalid parameters: {exc}") from exc
        self.segments: list[Segment] = []
        self.concrete_mask = (1 << CONC_BITS) - 1  # `index.protocol.concrete_mask`
        # The key ranges of this thread's last fingerprint lookup, per segment: the completion
        # of common keys (`lookup_in_documents`) asks for some of the same keys next, and
        # searching the buckets again was a third of its time (queries run in threads in the
        # service).
        self._recent = threading.local()
        deleted = self.manifest.get("deleted", {})
        for info in self.manifest["segments"]:
            seg = Segment(self.path / info["name"], info)
            seg.deleted = frozenset(deleted.get(info["name"], ()))
            self.segments.append(seg)

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for seg in self.segments:
            seg.close()

    @property
    def num_docs(self) -> int:
        return sum(s.num_docs - len(s.deleted) for s in self.segments)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def describe(self) -> str:
        return f"{self.path} ({self.num_docs} documents, {len(self.segments)} segments)"

    def _postings(
        self, table: str, keys: np.ndarray, max_postings: int, fields: Sequence[str] = ("at",)
    ) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
        """Per segment with hits: (query index, global doc reference, token position, and the
        ``fields`` after the first, "at"); and the postings of each query key in all segments."""
        out = []
        df = np.zeros(len(keys), dtype=np.int64)
        # A query repeats k-grams (a fifth of a long snippet's keys, typically): each distinct
        # key is searched once, and its range kept for the lookups that follow (sorted, so
        # that `_known_ranges` finds them without sorting).
        distinct, which = distinct_inverse(np.asarray(keys, dtype=np.uint64))
        ranges = []
        for si, seg in enumerate(self.segments):
            packed = getattr(seg, table)
            found = packed.ranges(key_of(distinct, seg.key_bits))
            ranges.append(found)
            lo, hi = found[0][which], found[1][which]
            idx, qi, seg_df = gather_ranges(lo, hi, max_postings)
            df += seg_df
            if len(idx) == 0:
                continue
            at, *rest = getattr(seg, table).fields(fields, idx)  # with the other fields read
            out.append(_live(seg, si, *seg.locate(at), qi, *rest))
        if table == "fp":
            self._recent.fp = (distinct, ranges)
        return out, df

    def _known_ranges(self, keys: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Per segment, the fingerprint key ranges of ``keys`` if this thread's last lookup had
        every one of them, else None."""
        recent = getattr(self._recent, "fp", None)
        if recent is None or len(recent[0]) == 0:
            return None
        last, ranges = recent  # the distinct keys of the last lookup, sorted, and their ranges
        keys = np.asarray(keys, dtype=np.uint64)
        at = np.minimum(np.searchsorted(last, keys), len(last) - 1)
        if not (last[at] == keys).all():
            return None
        return [(lo[at], hi[at]) for lo, hi in ranges]

    def lookup_fingerprints(self, keys: np.ndarray, max_postings: int) -> FingerprintHits:
        parts = []
        found, df = self._postings("fp", keys, max_postings, _FP_FIELDS)
        for qi, doc, pos, conc, flag in found:
            parts.append((qi, doc, pos, *_fingerprint_fields(conc, flag), df[qi]))
        return FingerprintHits(*_columns(parts, 6))

    def key_files(self, keys: np.ndarray) -> np.ndarray:
        """Files holding each fingerprint key ``keys`` in all segments (`segment_files`): how
        common a shape is where a lookup read only a sample of its postings
        (`index.protocol.key_files`)."""
        keys = np.asarray(keys, dtype=np.uint64)
        known = self._known_ranges(keys)
        out = np.zeros(len(keys), dtype=np.int64)
        for si, seg in enumerate(self.segments):
            stored = key_of(keys, seg.key_bits)
            lo, hi = known[si] if known is not None else seg.fp.ranges(stored)
            out += segment_files(seg, stored, lo, hi)
        return out

    def lookup_in_documents(self, keys: np.ndarray, docs: np.ndarray) -> FingerprintHits:
        """Postings of ``keys`` in the documents ``docs`` (global references) only, however many
        other documents share the keys: what a sample of a common key's postings left out for
        the documents a query is about (``df`` is then the key's postings in the segment)."""
        parts = []
        known = self._known_ranges(keys)
        for si, seg in enumerate(self.segments):
            local = distinct_values(docs[(docs >> 32) == si] & 0xFFFFFFFF)
            local = local[local < seg.num_docs]  # a reference to no document has no postings
            if len(local) == 0:
                continue
            lo, hi = known[si] if known is not None else seg.fp.ranges(key_of(keys, seg.key_bits))
            n = hi - lo
            if not n.any():
                continue
            # Within one key the postings are in token order, so in document order (segments
            # are sorted by key, then token number): each wanted document's run in each key is
            # found by searching the key's range for the document's first token number, not by
            # reading it (a licence header's key has thousands of postings), and for the first
            # token number of the next document (`runs_by_search`); or, where the keys' ranges
            # are short (keys that the budget sampled), by reading them whole (`runs_by_reading`).
            keyed = n.nonzero()[0]
            # A query repeats k-grams (its bridges repeat its k-grams' keys too): 30 % of the keys
            # that the completions of the gigabyte probes ranked 5-60 searched. Each range is
            # searched once, and its runs are repeated for the keys that share it.
            first, inverse = distinct_first_inverse(lo[keyed])
            repeated = len(first) < len(keyed)
            searched = keyed[first] if repeated else keyed  # (by range, when some repeat)
            owner, doc = searched.repeat(len(local)), np.tile(local, len(searched))
            start, end = seg.starts[doc], seg.starts[doc + 1]
            if int(n[searched].sum()) <= _READ_WHOLE and len(searched) < 2**_RANK_BITS:
                a, runs = runs_by_reading(seg.fp, "at", lo[searched], n[searched], start, end)
            else:
                a, runs = runs_by_search(seg.fp, "at", lo[owner], hi[owner], start, end)
            if repeated:
                a = a.reshape(len(searched), -1)[inverse].ravel()
                runs = runs.reshape(len(searched), -1)[inverse].ravel()
                owner, doc = keyed.repeat(len(local)), np.tile(local, len(keyed))
            if not runs.any():
                continue
            at = concat_ranges(a, runs)
            owner, doc = owner.repeat(runs), doc.repeat(runs)
            token, conc, flag = seg.fp.fields(_FP_FIELDS, at)
            pos = token.astype(np.int64) - seg.starts[doc]
            qi, ref, pos, conc, flag = _live(seg, si, doc, pos, owner, conc, flag)
            parts.append((qi, ref, pos, *_fingerprint_fields(conc, flag), n[qi]))
        return FingerprintHits(*_columns(parts, 6))

    def lookup_bands(self, keys: np.ndarray, max_postings: int) -> BandHits:
        parts = []
        for qi, doc, first in self._postings("mh", keys, max_postings)[0]:
            # Lines are resolved by `band_lines` for reported matches only: -1, and the
            # window's first token in place of its end line.
            parts.append((qi, doc, np.full(len(qi), -1, dtype=np.int64), first))
        return BandHits(*_columns(parts, 4))

    def hit_lines(self, hits: FingerprintHits, first: int, last: int) -> tuple[int, int]:
        """The source line where hit ``first``'s k-gram starts and the one where hit ``last``'s
        ends (both hits of one document), from the document's line table."""
        ref = int(hits.doc[first])
        lines = self.segments[ref >> 32].lines.lines(ref & 0xFFFFFFFF)
        flagged = bool((int(hits.meta[last]) >> 16) & 1)
        end = lines.kgram_end_line(int(hits.pos[last]), flagged, self.params.kgram)
        return lines.line(int(hits.pos[first])), end

    def band_lines(self, hits: BandHits, sel: np.ndarray) -> tuple[int, int]:
        """The first and the last source line of the windows of band hits ``sel`` (all of one
        document), from the document's line table."""
        ref = int(hits.doc[sel][0])
        lines = self.segments[ref >> 32].lines.lines(ref & 0xFFFFFFFF)
        first = hits.end_line[sel]
        return lines.line(int(first.min())), lines.window_end(int(first.max()), self.params.minhash_lines)

    def document(self, ref: int) -> dict[str, Any]:
        return self.segments[ref >> 32].doc(ref & 0xFFFFFFFF)

    def iter_documents(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Every live document as (segment name, local id, record)."""
        for seg in self.segments:
            for i, doc in enumerate(seg.iter_docs()):
                if i not in seg.deleted:
                    yield seg.name, i, doc

    def verify(self) -> list[str]:
        bad: list[str] = []
        for seg in self.segments:
            bad.extend(seg.verify())
        return bad
