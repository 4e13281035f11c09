"""Answering "is this text in the corpus, where, and how strongly?".

Pipeline: tokens -> every k-gram's abstract hash looked up (candidates) -> hits chained per
document along consistent diagonals, tolerating the gaps that edits leave (verification) -> the
chain's ends give the span in the query (chars, lines) and in the source (lines) (location) ->
coverage and the share of concretely identical k-grams give the score (scoring). When no exact
chain is long enough, MinHash band keys of line windows find near copies with scattered edits.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import cast

import numpy as np

from index.distinct import distinct_counts
from index.fingerprint import (
    BandKeys,
    code_stream,
    kgram_hashes,
    leftmost_minima,
    minhash_bands,
    structure_hashes,
)
from index.normalize import PLACEHOLDER_ID, Tokens, token_id, tokenize
from index.protocol import (
    BandHits,
    FingerprintHits,
    IndexStore,
    LooksUpBoth,
    band_lines,
    concrete_mask,
    hit_lines,
    key_files,
)
from stacklens.errors import InputError

from .hits import lexorder, nearest_repeats
from .match import Match, QuerySpan, Source, SourceSpan
from .settings import QuerySettings

_MAX_REPEATS = 4  # occurrences of one k-gram per document considered
_MAX_ACTIVE = 24  # chains a new hit may extend (the most recent ones)
_CHAINS_PER_DOC = 4  # chains of one document that are scored
_COMPLETED_DOCS = 4  # documents whose postings of sampled keys are read (most rare hits first)
# Sum over a renamed-only chain's hits of 1 / files holding its key, at a winnowing window of 11
# (fewer as a wider window keeps fewer k-grams): four hits found in no other file, six when the
# hits lie on more than one diagonal. On the seven-language benchmark (3,220 cases) this refuses
# 16 of 33 false positives (renamed-looking look-alikes within one project: glibc's syscall
# wrappers, rxjs's operators) for 12 of 2,520 right answers; three hits refused 0 of them.
_STRUCTURE_EVIDENCE = 4.0
_STRUCTURE_EVIDENCE_SPREAD = 6.0


def _rarity_needed(spread: bool, window: int) -> float:
    """The rarities a renamed-only chain's hits must sum to (`_STRUCTURE_EVIDENCE`), at this
    winnowing window: what `Matcher._score_chain` asks and `_hopeless` bounds."""
    return (_STRUCTURE_EVIDENCE_SPREAD if spread else _STRUCTURE_EVIDENCE) * 12 / (window + 1)


# Separators carry no evidence of shared structure: a list of names is all commas.
_SEPARATORS = ", . ( ) [ ] { } : ;"
_PUNCTUATION = np.array([token_id(t) for t in _SEPARATORS.split()], dtype=np.uint64)


def decode_query(data: bytes, max_bytes: int) -> str:
    """Validated query text from raw bytes, or an `InputError` saying what is wrong."""
    if len(data) > max_bytes:
        raise InputError(
            f"the query is {len(data):,} bytes; the limit is {max_bytes:,} "
            "(check a smaller part, or raise it with --max-query-bytes / STACKLENS_MAX_QUERY_BYTES)"
        )
    if b"\x00" in data:
        raise InputError("the query looks binary (it contains NUL bytes); pass source code")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the query is not valid UTF-8 (byte {exc.start}); pass UTF-8 text") from None
    if not text.strip():
        raise InputError("the query is empty; pass the code to check")
    return text


@dataclass
class _Candidate:
    doc: int
    q_start: int  # token index
    q_end: int  # token index, exclusive
    # The source lines (first, last), resolved from the store for the matches reported only
    # (the embedded store keeps them in a line table, not in the postings).
    src_lines: Callable[[], tuple[int, int]]
    kind: str
    score: float
    chars: int
    occurrences: int = 1  # corpus files holding the matched code, at most (its rarest k-gram's)
    hit_start: int = -1  # token range its hits cover (inside [q_start, q_end)); -1: the same
    hit_end: int = -1

    @property
    def weight(self) -> float:
        # A verbatim source outranks a near one of about its length (near-identical files such
        # as generated codecs differ in a name or two), but a near chain that explains clearly
        # more of the query (the file an edited or comment-stripped copy came from) outranks a
        # short verbatim fragment that its near-identical siblings share. bench_membership: the
        # square beats both the 8th power (edited attribution 0.910 -> 0.935, comment-stripped
        # 0.975 -> 0.980) and the plain score.
        return self.chars * self.score**2


class _Shape:
    """Per-query counts over token ranges for the structure-only checks, computed once on first
    use instead of once per chain."""

    def __init__(self, tokens: Tokens, structure: np.ndarray) -> None:
        self._tokens, self._structure = tokens, structure

    @cached_property
    def _specific_prefix(self) -> list[int]:
        abstract = self._tokens.abstract
        specific = (abstract != PLACEHOLDER_ID) & ~np.isin(abstract, _PUNCTUATION)
        prefix: list[int] = np.concatenate(([0], specific.cumsum())).tolist()
        return prefix

    @cached_property
    def _previous_same(self) -> np.ndarray:
        """Index of the previous k-gram with the same structure hash, or -1."""
        order = np.argsort(self._structure, kind="stable")
        same = self._structure[order[1:]] == self._structure[order[:-1]]
        prev = np.full(len(order), -1, dtype=np.int64)
        prev[order[1:][same]] = order[:-1][same]
        return prev

    def specific(self, i: int, j: int) -> int:
        """Tokens in ``[i, j)`` that are neither placeholders nor separators."""
        return self._specific_prefix[j] - self._specific_prefix[i]

    def distinct(self, i: int, j: int) -> int:
        """Distinct structure hashes among the k-grams ``[i, j)``: those first seen there."""
        return int((self._previous_same[i:j] < i).sum())


def _chains(q: np.ndarray, s: np.ndarray, e: np.ndarray, max_gap: int, max_drift: int) -> list[list[int]]:
    """Group hits (sorted by q) into chains that advance in both texts with a bounded drift.
    Gaps are measured in ``e``, the query positions with the k-grams that hundreds of files
    share left out: a licence header between two copied parts is no gap in the evidence."""
    # Checked one condition at a time: most documents that get here repeat a k-gram (two hits
    # at one query position) and fail the first. (Differences by slices: np.diff costs 4.2 us
    # a call here, a slice 1.3.)
    if len(q) > 1 and (dq := q[1:] - q[:-1]).min() > 0 and (ds := s[1:] - s[:-1]).min() > 0:
        de = e[1:] - e[:-1]
        if de.max() <= max_gap and (ds - (dq - de) <= max_gap).all() and (np.abs(ds - dq) <= max_drift).all():
            return [list(range(len(q)))]  # the usual copy: one clean diagonal
    chains: list[list[int]] = []
    # The chains in the order they last grew, so by their last q, each as its last hit (q, s, e,
    # diagonal s - q, diagonal + e) and its number: a hit (qh, sh, eh) may extend a chain when
    # both texts advance and sh - qh + eh - max_gap <= diagonal + e (the gap, in ``e``, left by
    # the step off the diagonal), so the inner loop below compares numbers unpacked at once
    # instead of indexing three lists (or a list of tails: 0.87 -> 0.7 ms a probe of the band).
    active: list[tuple[int, int, int, int, int, int]] = []
    for h, (qh, sh, eh) in enumerate(zip(q.tolist(), s.tolist(), e.tolist(), strict=True)):
        while active and eh - active[0][2] > max_gap:
            del active[0]  # out of reach, and so is nothing behind it
        dh = sh - qh
        least = dh + eh - max_gap
        best, best_drift, chosen = -1, max_drift + 1, None
        for tail in active:
            lq, ls, _, dc, reach, c = tail
            if lq >= qh or ls >= sh or reach < least:
                continue
            drift = dh - dc if dh > dc else dc - dh
            if drift < best_drift:
                best, best_drift, chosen = c, drift, tail
                if not drift:
                    break  # on the hit's diagonal: none after it can be nearer (ties go first)
        if chosen is None:
            best = len(chains)
            chains.append([h])
        else:
            chains[best].append(h)
            active.remove(chosen)  # the one with its number: no other tail equals it
        active.append((qh, sh, eh, dh, dh + eh, best))
        if len(active) > _MAX_ACTIVE:
            del active[0]  # the chain that has waited longest
    return chains


def _link(
    chains: list[list[int]], q: list[int], s: list[int], e: list[int], max_gap: int, max_skip: int
) -> list[list[int]]:
    """Join chains that follow each other in the query while the source skips ahead by up to
    ``max_skip`` tokens: a copy with its comments stripped (or lines deleted) skips doc comments
    of the source, far longer than the drift that edits leave. Done on whole chains, not hits, so
    that a repeat of a k-gram further down the source cannot pull a copy off its diagonal."""
    if len(chains) < 2:
        return chains
    if len(chains) >= _LINK_BY_DIAGONAL:
        return _link_by_diagonal(chains, q, s, e, max_gap, max_skip)
    groups: list[list[int]] = []
    ends: list[tuple[int, int, int]] = []  # last (q, diagonal s - q, e) of each group
    reachable: list[int] = []  # groups whose end is within max_gap of the chains to come
    for chain in sorted(chains, key=lambda c: q[c[0]]):
        fq, fe = q[chain[0]], e[chain[0]]
        fd, reach = s[chain[0]] - fq, fe - max_gap
        best, best_skip = -1, max_skip + 1
        pruned = False
        for g in reachable:
            lq, ld, le = ends[g]
            if le < reach:
                pruned = True  # chains come by first q (and e grows with q): out of reach for good
                continue
            # Both advance, the source no less: the skip is the step between the diagonals.
            if lq < fq and 0 <= fd - ld < best_skip:
                best, best_skip = g, fd - ld
                if not best_skip:
                    # No skip: none after it can skip less (ties go first). The groups after
                    # it that are out of reach stay so, and are pruned on a later chain.
                    break
        if pruned:  # rebuilt only then: a font table's hundreds of chains are mostly in reach
            reachable = [g for g in reachable if ends[g][2] >= reach]
        last = chain[-1]
        if best < 0:
            best = len(groups)
            groups.append(list(chain))
            ends.append((q[last], s[last] - q[last], e[last]))
            reachable.append(best)
        else:
            groups[best].extend(chain)
            ends[best] = (q[last], s[last] - q[last], e[last])
    return groups


# Chains from which `_link` finds a chain's group by its diagonal (`_link_by_diagonal`) rather
# than trying every group in reach: linking the 500 gigabyte probes' documents, best of 9,
# 48-127 chains 3.2 -> 2.1 ms all told, 128 or more (a font table's 337) 3.0 -> 1.3; fewer
# than 48, the bisections cost more than they spare (under 16: 5.7 -> 6.4 ms).
_LINK_BY_DIAGONAL = 48


def _link_by_diagonal(
    chains: list[list[int]], q: list[int], s: list[int], e: list[int], max_gap: int, max_skip: int
) -> list[list[int]]:
    """`_link`, the same groups, for many chains: the groups are kept sorted by the diagonal of
    their end (then by number), so a chain finds the group it joins, the one in reach whose end
    lies on the highest diagonal at or below its first hit's (the least skip; of several, the
    first made), by stepping down from its own diagonal, not by trying every group in reach."""
    groups: list[list[int]] = []
    ends: list[tuple[int, int]] = []  # last (q, e) of each group
    by_diagonal: list[tuple[int, int]] = []  # (diagonal of its end, number) of the groups in reach
    for chain in sorted(chains, key=lambda c: q[c[0]]):
        fq = q[chain[0]]
        fd, reach = s[chain[0]] - fq, e[chain[0]] - max_gap
        lowest, best, found = fd - max_skip, -1, None
        j = bisect.bisect_right(by_diagonal, (fd, len(groups)))
        while j:
            j -= 1
            ld, g = by_diagonal[j]
            if ld < lowest or (found is not None and ld != found):
                break
            lq, le = ends[g]
            if le < reach:
                del by_diagonal[j]  # out of reach for good: chains come by first q, e grows with q
            elif lq < fq:
                best, found = g, ld  # and on down its diagonal: a group made before it goes first
        last = chain[-1]
        if best < 0:
            best = len(groups)
            groups.append(list(chain))
            ends.append((q[last], e[last]))
        else:
            groups[best].extend(chain)
            ends[best] = (q[last], e[last])
            del by_diagonal[bisect.bisect_left(by_diagonal, (found, best))]
        bisect.insort(by_diagonal, (s[last] - q[last], best))
    return groups


def _diagonal_support(group: np.ndarray, diag: np.ndarray, n_groups: int, width: int) -> np.ndarray:
    """Per group, the most hits lying on nearby diagonals (two adjacent bands of ``width``).

    A copy puts its hits on one diagonal (shifted a little by edits); shared idioms scatter
    theirs. Counting in numpy spares the chaining loop the hundreds of scattered documents
    a generic query touches.
    """
    band = diag // width
    band -= band.min() if len(band) else 0
    stride = int(band.max()) + 2 if len(band) else 1
    keys, counts = distinct_counts(group * stride + band)
    # The keys are sorted and distinct: a band's neighbour, if it has hits, is the next key
    # (and in the same group, as the stride leaves a band free above the highest).
    pair = counts.copy()
    pair[:-1] += np.where(keys[1:] == keys[:-1] + 1, counts[1:], 0)
    owner = keys // stride
    first = np.concatenate(([True], owner[1:] != owner[:-1])).nonzero()[0]
    best = np.zeros(n_groups, dtype=np.int64)
    if len(first):
        best[owner[first]] = np.maximum.reduceat(pair, first)  # groups come in order: no ufunc.at
    return best


def _sampled_keys(found: FingerprintHits, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query key: whether the store read only a sample of its postings (hundreds of files
    share it, or it did not fit the budget), and how many postings it has."""
    df = np.zeros(n_keys, dtype=np.int64)
    df[found.qi] = found.df
    return np.bincount(found.qi, minlength=n_keys) < df, df


def _effective_positions(at: np.ndarray, sampled: np.ndarray, n: int) -> np.ndarray:
    """Query positions with the common stretches left out. ``at`` holds the position of every
    hit, ``sampled`` whether its key is common (``_sampled_keys``); a stretch between two common
    keys with no other key in it is common too (the index keeps one k-gram in a window, so
    most positions of a licence header have no key at all)."""
    state = np.zeros(n, dtype=np.int8)  # 0: no key, 2: common, 1: a key read in full
    state[at[sampled]] = 2
    state[at[~sampled]] = 1
    ar = np.arange(n)
    prev = np.maximum.accumulate(np.where(state > 0, ar, -1))
    nxt = np.minimum.accumulate(np.where(state > 0, ar, n)[::-1])[::-1]
    inside = (prev >= 0) & (nxt < n)
    common = (state == 2) | (
        inside & (state[np.maximum(prev, 0)] == 2) & (state[np.minimum(nxt, n - 1)] == 2)
    )
    c = common.astype(np.int64)
    effective: np.ndarray = ar - c.cumsum() + c
    return effective


def _files_per_key(found: FingerprintHits, sampled: np.ndarray, sampled_files: np.ndarray) -> np.ndarray:
    """How many files hold each query key: distinct documents where all its postings were read,
    ``sampled_files`` where only a sample was (the store's count, `index.protocol.key_files`;
    a store that keeps none gives the postings, an upper bound). A k-gram repeated all over one
    file (a table, a run of similar blocks, a licence header repeated) is still one file."""
    # Distinct (key, document) pairs; document references are any int64 (Elasticsearch's too).
    # The embedded index gives a key's postings together and in document order (one segment's):
    # equal pairs are then next to each other already, and sorting them is spared.
    qi, doc = found.qi, found.doc
    new_key = qi[1:] != qi[:-1]
    if not ((qi[1:] >= qi[:-1]) & (new_key | (doc[1:] >= doc[:-1]))).all():
        order = lexorder(qi, doc)
        qi, doc = qi[order], doc[order]
        new_key = qi[1:] != qi[:-1]
    first = np.concatenate(([True], new_key | (doc[1:] != doc[:-1])))
    files = np.bincount(qi[first], minlength=len(sampled))
    files[sampled] = sampled_files
    return files


def _hopeless(exact: np.ndarray, rarity: np.ndarray, starts: np.ndarray, min_rarity: float) -> np.ndarray:
    """Per document (its hits from ``starts``, with ``exact`` and positive ``rarity`` per hit),
    whether no chain of its hits can pass `Matcher._score_chain`'s evidence tests. A chain of
    two hits counts only when both are verbatim; one of three or more with at most one verbatim
    hit is mostly renamed, so its rarities must sum to ``min_rarity`` (the smaller of the two
    thresholds) or more. A document with at most one verbatim hit whose rarities all together
    sum to less cannot give either. The sum is compared with a margin: a chain's float sum (in
    numpy's order) of fewer positive terms is then below the threshold whatever the order."""
    verbatim = np.add.reduceat(exact.astype(np.int64), starts)
    total = np.add.reduceat(rarity, starts)
    hopeless: np.ndarray = (verbatim <= 1) & (total < min_rarity * (1 - 1e-6))
    return hopeless


def _trim_reaches(chosen: list[_Candidate], tokens: Tokens) -> None:
    """Where what a match inferred past its hits (``Matcher._extent``) reaches over another
    match's hits, the hits win: two files copied one after the other are two spans, not one."""
    if len(chosen) < 2:
        return
    for c in chosen:
        if c.hit_start < 0:
            continue
        for o in chosen:
            if o is c or o.hit_start < 0 or o.doc == c.doc:
                continue
            if o.hit_end <= c.hit_start < o.q_end:
                o.q_end = max(o.hit_end, min(o.q_end, c.hit_start))
            if c.hit_end <= o.hit_start < c.q_end:
                c.q_end = max(c.hit_end, min(c.q_end, o.hit_start))
            if o.hit_start >= c.hit_end and c.q_end > o.q_start:
                o.q_start = max(o.q_start, c.q_end)
            if c.hit_start >= o.hit_end and o.q_end > c.q_start:
                c.q_start = max(c.q_start, o.q_end)
        c.chars = tokens.norm_chars(c.q_start, c.q_end)


def _window_argmins(hashes: np.ndarray, window: int) -> list[int]:
    """For every window of ``window`` hashes, the position of its smallest (as ``winnow``, by
    its `leftmost_minima`: an argmin over a sliding window view cost 46 us for a query's 420
    k-grams here, these 32)."""
    if len(hashes) < window:
        return [int(np.argmin(hashes))] if len(hashes) else []
    argmins: list[int] = leftmost_minima(hashes, window).tolist()
    return argmins


class _NearLookup:
    """A query's MinHash bands (computed when first needed) and their hits: looked up with the
    fingerprints where the store does both in one request (`index.protocol.LooksUpBoth`),
    else on their own, only when the query finds no exact match; not at all unless ``wanted``."""

    def __init__(self, store: IndexStore, tokens: Tokens, max_postings: int, wanted: bool) -> None:
        self.store, self.tokens, self.max_postings, self.wanted = store, tokens, max_postings, wanted
        self._hits: Callable[[], BandHits] | None = None

    @cached_property
    def bands(self) -> BandKeys:
        return minhash_bands(self.tokens, self.store.params, stride=1)

    def fingerprints(self, keys: np.ndarray) -> FingerprintHits:
        if not self.wanted or not hasattr(self.store, "lookup_with_bands"):
            return self.store.lookup_fingerprints(keys, self.max_postings)
        both = cast(LooksUpBoth, self.store)
        found, self._hits = both.lookup_with_bands(keys, self.bands.keys, self.max_postings)
        return found

    def hits(self) -> BandHits:
        if self._hits is None:
            return self.store.lookup_bands(self.bands.keys, self.max_postings)
        return self._hits()


class Matcher:
    """Runs membership queries against one index store."""

    def __init__(self, store: IndexStore, settings: QuerySettings | None = None) -> None:
        self.store = store
        self.settings = settings or QuerySettings()
        p = store.params
        self._max_gap = 2 * (p.window + p.kgram)
        self._max_drift = 4 * p.window
        # A Javadoc or rustdoc block stripped from a copy: tens of lines of comment tokens.
        self._max_skip = 40 * p.window
        # Identical code in hundreds of files (vendored copies, generated tables) must not make
        # one query chain them all; the best-supported documents are enough to rank.
        self._max_docs = max(8, self.settings.max_matches + 2)

    def check(
        self, text: str, lang: str | None = None, path: str | None = None, *, focus_start: int = 0
    ) -> list[Match]:
        """Matches of ``text`` in the corpus, best first; [] when nothing long enough is found.
        With ``focus_start``, the text before that character is context: only matches that
        reach past it are wanted (a suggestion checked with the code before the cursor)."""
        if len(text) > self.settings.max_query_bytes:
            raise InputError(
                f"the query has {len(text):,} characters; the limit is {self.settings.max_query_bytes:,}"
            )
        # One tokenisation for every language: matching never depends on knowing it, so
        # ``lang`` and ``path`` (kept for callers) change nothing.
        tokens = tokenize(text)
        # Index of the first token that ends after focus_start: a candidate must reach it.
        focus = int(np.searchsorted(tokens.end, focus_start, "right")) if focus_start > 0 else 0
        near = _NearLookup(self.store, tokens, self.settings.max_postings, self.settings.near_duplicates)
        found = self._exact(tokens, focus, near)
        if not found and near.wanted:
            found = self._near(tokens, near)
        found = [c for c in found if c.q_end > focus]
        return self._render(tokens, found)

    def _exact(self, tokens: Tokens, focus: int, near: _NearLookup) -> list[_Candidate]:
        p = self.store.params
        qa = structure_hashes(tokens, p.kgram)
        if len(qa) == 0:
            return []
        qc = kgram_hashes(tokens.concrete, p.kgram) & np.uint64(0xFFFF)
        keys, at = qa, np.arange(len(qa))
        cs = code_stream(tokens, p.kgram)
        bridges = cs.bridge.nonzero()[0] if cs is not None else np.empty(0, dtype=np.int64)
        if cs is not None and len(bridges):
            # The code's k-grams across comments find a source whose comments were stripped
            # from this copy, or whose comments this copy lacks (see index.fingerprint).
            keys = np.concatenate([qa, cs.structure[bridges]])
            at = np.concatenate([at, cs.first[bridges]])
            qc = np.concatenate([qc, cs.concrete_at(bridges) & np.uint64(0xFFFF)])
        found = near.fingerprints(keys)
        if len(found.qi) < 2:
            return []
        # Positions of k-grams that hundreds of files share (licence headers, boilerplate) do
        # not count as gaps or as uncovered text: ``eff`` is a position without them.
        sampled, df = _sampled_keys(found, len(keys))
        eff_at = _effective_positions(at[found.qi], sampled[found.qi], len(tokens) + 1)
        files = _files_per_key(found, sampled, key_files(self.store, keys[sampled], df[sampled]))
        found = self._complete_samples(found, keys, sampled, df)
        at_hit = at[found.qi]
        order = lexorder(found.doc, at_hit, found.pos)
        # A bridge and a k-gram of the text can start at the same token on both sides, and a
        # completed sample repeats what the sample had: one hit each, or a chain splits in two.
        o_doc, o_q, o_pos = found.doc[order], at_hit[order], found.pos[order]
        dup = (o_doc[1:] == o_doc[:-1]) & (o_q[1:] == o_q[:-1]) & (o_pos[1:] == o_pos[:-1])
        order = order[np.concatenate(([True], ~dup))]
        order = nearest_repeats(order, found.doc, at_hit, found.pos, _MAX_REPEATS)
        # The hits kept, in that order (by document, query position, source position), and from
        # here on a hit's ``qi`` is the token position of its k-gram in the query. A completed
        # file that repeats a k-gram hundreds of times has tens of thousands of postings, of
        # which a thousand are kept: nothing below is computed for the others.
        key_of_hit = found.qi[order]
        hits = FingerprintHits(
            qi=at_hit[order],
            doc=found.doc[order],
            pos=found.pos[order],
            line=found.line[order],
            meta=found.meta[order],
            df=files[key_of_hit],
        )
        mask = concrete_mask(self.store)
        exact = (hits.meta & mask) == (qc[key_of_hit].astype(np.int64) & mask)
        # How common each hit's shape is: files holding its key in the corpus. A hit shared
        # with many files is weak evidence of a copy.
        rarity = 1.0 / np.maximum(hits.df, 1)
        eff = eff_at[hits.qi]
        docs = hits.doc
        starts = np.concatenate(([True], docs[1:] != docs[:-1])).nonzero()[0]
        ends = np.concatenate((starts[1:], [len(docs)]))
        # Cheap bounds first: a document whose hits span too little query text, even all
        # chained together, cannot give a match; chaining (Python) runs only on the rest, the
        # documents with the most hits first.
        first_q = np.minimum.reduceat(hits.qi, starts)
        last_q = np.maximum.reduceat(hits.qi, starts)
        prefix = tokens.char_prefix
        reach_ = p.window - 1  # how far a copy can extend past its outermost hits (winnowing)
        # The most tokens between two hits that a chain's coverage counts as covered: an
        # identical copy leaves gaps of up to ``window`` tokens between the hits of winnowed
        # k-grams, so with a window longer than the k-gram those tokens are copied, not
        # uncovered (no change at the default 14 / 11; measured at 12 / 15, it kept renamed
        # copies of the quick cases at 0.868, not 0.829).
        cap = max(p.kgram, p.window)
        span_chars = (
            prefix[np.minimum(last_q + p.kgram + reach_, len(tokens))]
            - prefix[np.maximum(first_q - reach_, 0)]
        )
        support = _diagonal_support(
            np.arange(len(starts)).repeat(ends - starts),
            hits.pos - hits.qi,
            len(starts),
            self._max_drift,
        )
        # Documents whose hits all lie in the context before the focus cannot give a wanted
        # match (generic code before the cursor would otherwise fill the chaining budget).
        reach = last_q + p.kgram > focus
        viable = ((support >= 2) & (span_chars >= self.settings.min_chars) & reach).nonzero()[0]
        viable = viable[np.argsort(-(ends - starts)[viable], kind="stable")][: self._max_docs]
        # Of those, the documents that no chain can make a match are not chained (the same
        # matches): 63 % of the documents chained for the 500 gigabyte probes, 40 % of their hits.
        viable = viable[~_hopeless(exact, rarity, starts, _rarity_needed(False, p.window))[viable]]
        prefix_list = prefix.tolist()
        shape = _Shape(tokens, qa)
        argmins = _window_argmins(qa, p.window)
        line_list = tokens.line.tolist()
        n_tok = len(tokens)
        out: list[_Candidate] = []
        chained: dict[tuple[bytes, bytes], list[list[int]]] = {}
        for g in viable:
            first, stop = int(starts[g]), int(ends[g])
            q, s, e = hits.qi[first:stop], hits.pos[first:stop], eff[first:stop]
            q_list, s_list, e_list = q.tolist(), s.tolist(), e.tolist()
            # The document's hits as lists: a chain is scored from its hits in Python, where
            # numpy's overhead per call was most of the scoring.
            exact_list, df_list = exact[first:stop].tolist(), hits.df[first:stop].tolist()
            # Identical files (forks, vendored copies) have identical hits: chain them once.
            signature = (q.tobytes(), s.tobytes())
            chains = chained.get(signature)
            if chains is None:
                chains = chained[signature] = _link(
                    _chains(q, s, e, self._max_gap, self._max_drift),
                    q_list,
                    s_list,
                    e_list,
                    self._max_gap,
                    self._max_skip,
                )
            # A document's best few chains by hits: the rest of a repetitive file's chains are
            # fragments that its best ones outrank.
            for chain in sorted(chains, key=len, reverse=True)[:_CHAINS_PER_DOC]:
                if len(chain) < 2:
                    break
                a, b = chain[0], chain[-1]
                if len(chain) == 2 and not (
                    exact_list[a] and exact_list[b] and s_list[b] - s_list[a] == q_list[b] - q_list[a]
                ):
                    continue  # two hits are a copy only when both are verbatim, in step
                # Too short to match even extended: rejected here, before any numpy call.
                upper = (
                    prefix_list[min(q_list[b] + p.kgram + reach_, n_tok)]
                    - prefix_list[max(q_list[a] - reach_, 0)]
                )
                if upper < self.settings.min_chars:
                    continue
                # Scattered hits are shared idioms, not a copy (checked again, exactly, in scoring).
                cq = [e_list[h] for h in chain]
                covered = p.kgram + sum(min(y - x, cap) for x, y in itertools.pairwise(cq))
                if covered < self.settings.min_coverage * (cq[-1] + p.kgram - cq[0]):
                    continue
                coverage = covered / (cq[-1] + p.kgram - cq[0])
                start, end = self._extent(q_list[a], q_list[b], argmins, line_list, s_list[a])
                chars = prefix_list[end] - prefix_list[start]
                if chars < self.settings.min_chars:
                    continue
                c = self._score_chain(
                    tokens,
                    shape,
                    int(docs[starts[g]]),
                    (first, chain),
                    (start, end, chars, coverage),
                    hits,
                    (exact_list, rarity[first:stop], df_list, q_list, s_list),
                )
                if c is not None:
                    out.append(c)
        return out

    def _complete_samples(
        self, found: FingerprintHits, keys: np.ndarray, sampled: np.ndarray, df: np.ndarray
    ) -> FingerprintHits:
        """``found`` plus the postings that the store left out of its sample of common keys
        (``sampled``, ``df``: as ``_sampled_keys``), for the documents that the query's rarer
        keys point at. A file that starts with the licence header hundreds of files share, then
        a line of its own, is found whole."""
        hit_sampled = sampled[found.qi]
        if not hit_sampled.any() or hit_sampled.all():
            return found
        docs, counts = distinct_counts(found.doc[~hit_sampled])
        docs = docs[np.argsort(-counts, kind="stable")][: min(self._max_docs, _COMPLETED_DOCS)]
        common = sampled.nonzero()[0]
        extra = self.store.lookup_in_documents(keys[common], docs)
        if len(extra.qi) == 0:
            return found
        qi = common[extra.qi]
        return FingerprintHits(
            qi=np.concatenate([found.qi, qi]),
            doc=np.concatenate([found.doc, extra.doc]),
            pos=np.concatenate([found.pos, extra.pos]),
            line=np.concatenate([found.line, extra.line]),
            meta=np.concatenate([found.meta, extra.meta]),
            df=np.concatenate([found.df, df[qi]]),
        )

    def _extent(
        self, first: int, last: int, argmins: list[int], lines: list[int], src_first: int
    ) -> tuple[int, int]:
        """Token range ``[start, end)`` that a chain whose first and last hits are the k-grams
        ``first`` and ``last`` stands for: its hits, and how far the copy can reach past them.

        The index keeps the smallest k-gram of every window of ``window`` k-grams (winnowing).
        So a copy that started at token ``x < first`` would have put in the index the smallest
        k-gram of each window starting in ``[x, first]``; where that k-gram lies before
        ``first`` it would be a hit, and it is not, so the copy cannot start at ``x``
        (``argmins[a]``: where the window starting at ``a`` has its smallest k-gram, in the
        query). The earliest line start that this allows (copies are made of lines), and the
        same at the end. Without this a copy's first and last few tokens are never reported,
        and a short copy falls under the minimum size. Nor can a copy start before its source
        does: ``src_first`` tokens precede the first hit there.
        """
        k, reach, n = self.store.params.kgram, self.store.params.window - 1, len(lines)
        n_win = len(argmins)
        # The copy can start at x when no window starting in [x, first) has its smallest
        # k-gram before ``first``: the earliest such x, found stepping back from ``first``.
        # (With window 15 the reach alone took three lines written before a copied file.)
        start, lowest = first, max(first - min(reach, src_first), 0)
        while start > lowest and (start - 1 >= n_win or argmins[start - 1] >= first):
            start -= 1
        for t in range(start, first + 1):  # copies are made of lines: the first line start
            if t == 0 or lines[t] != lines[t - 1]:
                start = t
                break
        stop, highest = last, min(last + reach, n - k)  # the last k-gram the copy covers
        while stop < highest and (
            (a := stop + 1 - reach) < 0 or a >= n_win or argmins[a] <= last
        ):  # and the same at the end: the windows starting in [last + 1 - reach, stop - reach]
            stop += 1
        end = stop + k
        for t in range(end - 1, last + k - 2, -1):  # and the last line end
            if t == n - 1 or lines[t] != lines[t + 1]:
                end = t + 1
                break
        return start, end

    def _score_chain(
        self,
        tokens: Tokens,
        shape: _Shape,
        doc: int,
        chain: tuple[int, list[int]],
        extent: tuple[int, int, int, float],
        hits: FingerprintHits,
        evidence: tuple[list[bool], np.ndarray, list[int], list[int], list[int]],
    ) -> _Candidate | None:
        """The candidate for one chain whose ``extent`` (token start, end, normalised chars, the
        share of its span its hits cover, in positions without common stretches) is at least
        ``min_chars``, or None. ``chain``: the document's first hit in ``hits`` and the chain's
        hits counted from it; ``evidence``: per hit of the document, whether it is verbatim, its
        rarity (an array), files holding its key, query and source positions."""
        k = self.store.params.kgram
        offset, idx = chain
        exact, rarity, files, qi, pos = evidence
        hit_start, hit_end = qi[idx[0]], qi[idx[-1]] + k
        q_start, q_end, chars, coverage = extent
        if coverage < self.settings.min_coverage:
            return None  # scattered hits: shared idioms, not a copy
        exact_ratio = sum(exact[h] for h in idx) / len(idx)
        diagonal = [pos[h] - qi[h] for h in idx]
        if exact_ratio < 0.5:
            # Structure alone (renamed copies) is weaker evidence than text: its shapes must be
            # rare (about four hits found in no other file), and mostly code rather than prose
            # or name lists, which abstract to the same few shapes in unrelated files.
            spread = any(d != diagonal[0] for d in diagonal)
            # Summed by numpy (its pairwise order), as the threshold was tuned.
            if float(rarity[idx].sum()) < _rarity_needed(spread, self.store.params.window):
                return None
            specific = shape.specific(q_start, q_end) / (q_end - q_start)
            if specific < self.settings.min_structure:
                return None
            # Repetitive blocks (``self.a = None`` twenty times) have one shape that many
            # unrelated files share; a copy has mostly distinct k-grams.
            n_shapes = q_end - k + 1 - q_start
            if shape.distinct(q_start, q_end - k + 1) < 0.5 * n_shapes:
                return None
        verbatim = exact_ratio == 1.0 and coverage == 1.0 and all(d == diagonal[0] for d in diagonal)
        fewest = min(files[h] for h in idx)
        if not verbatim and fewest > self.settings.max_postings:
            return None  # only shapes that hundreds of files share, and not even one verbatim run
        # Files holding the matched code, at most: those holding its rarest k-gram, of the hits
        # whose winnowing windows lie inside the match (whether another copy stores a k-gram near
        # the match's ends depends on its text around them: with window 15 a header that 200
        # files share read "found in 3 files" from such a hit).
        reach = self.store.params.window - 1
        inner = [h for h in idx if qi[h] - hit_start >= reach and hit_end - qi[h] - k >= reach]
        occurrences = min(files[h] for h in inner) if inner else fewest
        score = 1.0 if verbatim else min(0.99, coverage * (0.7 + 0.3 * exact_ratio))
        # The first of the lowest source position, as argmin; indices into ``hits``.
        first, last = offset + min(idx, key=pos.__getitem__), offset + idx[-1]
        # The extent reaches past the outermost hits by as many lines in the source as in the query.
        before = int(tokens.line[hit_start] - tokens.line[q_start])
        after = int(tokens.end_line[q_end - 1] - tokens.end_line[hit_end - 1])

        def lines() -> tuple[int, int]:
            start, end = hit_lines(self.store, hits, first, last)
            return max(1, start - before), end + after

        return _Candidate(
            doc=doc,
            q_start=q_start,
            q_end=q_end,
            src_lines=lines,
            kind="exact" if verbatim else "near",
            score=round(score, 4),
            chars=chars,
            occurrences=max(1, occurrences),
            hit_start=hit_start,
            hit_end=hit_end,
        )

    def _near(self, tokens: Tokens, near: _NearLookup) -> list[_Candidate]:
        p = self.store.params
        bands = near.bands
        if len(bands.keys) == 0:
            return []
        hits = near.hits()
        if len(hits.qi) < 2:
            return []
        win = bands.window[hits.qi]
        out: list[_Candidate] = []
        for doc in np.unique(hits.doc):
            sel = hits.doc == doc
            # A window counts when at least two of its bands agree: one band alone fires for
            # loosely similar boilerplate far too often.
            wins, per_win = np.unique(win[sel], return_counts=True)
            windows = wins[per_win >= min(2, p.minhash_bands)]
            if len(windows) == 0:
                continue
            q_start = min(bands.ranges[w][0] for w in windows)
            q_end = max(bands.ranges[w][1] for w in windows)
            chars = tokens.norm_chars(q_start, q_end)
            if chars < self.settings.min_chars:
                continue
            strong = sel & np.isin(win, windows)
            band_share = strong.sum() / (len(windows) * p.minhash_bands)
            out.append(
                _Candidate(
                    doc=int(doc),
                    q_start=q_start,
                    q_end=q_end,
                    src_lines=partial(band_lines, self.store, hits, strong),
                    kind="near",
                    score=round(float(min(0.9, 0.5 + 0.4 * band_share)), 4),
                    chars=chars,
                )
            )
        return out

    def _render(self, tokens: Tokens, found: list[_Candidate]) -> list[Match]:
        found.sort(key=lambda c: (-c.weight, c.doc, c.q_start))
        chosen: list[_Candidate] = []
        for c in found:
            # The same document matching overlapping query text twice is one match (repeats).
            if any(o.doc == c.doc and o.q_start < c.q_end and c.q_start < o.q_end for o in chosen):
                continue
            chosen.append(c)
            if len(chosen) >= self.settings.max_matches:
                break
        _trim_reaches(chosen, tokens)
        matches = []
        for c in chosen:
            src_start, src_end = c.src_lines()
            doc = self.store.document(c.doc)
            matches.append(
                Match(
                    kind=c.kind,
                    score=c.score,
                    source=Source(
                        repo=doc.get("repo"),
                        path=doc["path"],
                        license=doc.get("license"),
                        url=doc.get("url"),
                        sha=doc.get("sha"),
                    ),
                    source_span=SourceSpan(start_line=src_start, end_line=max(src_start, src_end)),
                    query_span=QuerySpan(
                        start_line=int(tokens.line[c.q_start]),
                        end_line=int(tokens.end_line[c.q_end - 1]),
                        start_char=int(tokens.start[c.q_start]),
                        end_char=int(tokens.end[c.q_end - 1]),
                    ),
                    matched_chars=c.chars,
                    occurrences=c.occurrences,
                )
            )
        return matches
