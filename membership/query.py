"""Answering "is this text in the corpus, where, and how strongly?".

Pipeline: tokens -> every k-gram's abstract hash looked up (candidates) -> hits chained per
document along consistent diagonals, tolerating the gaps that edits leave (verification) -> the
chain's ends give the span in the query (chars, lines) and in the source (lines) (location) ->
coverage and the share of concretely identical k-grams give the score (scoring). When no exact
chain is long enough, MinHash band keys of line windows find near copies with scattered edits.
"""

from __future__ import annotations

import itertools

import numpy as np

from index.distinct import distinct_counts
from index.fingerprint import code_stream, kgram_hashes, leftmost_minima, structure_hashes
from index.normalize import Tokens, tokenize
from index.protocol import FingerprintHits, IndexStore, concrete_mask, hit_lines, key_files
from stacklens.errors import InputError

from .candidate import Candidate, render
from .chains import chain_hits, diagonal_support, link_chains
from .common_keys import effective_positions, files_per_key, sampled_keys
from .hits import lexorder, nearest_repeats
from .match import Match
from .near import NearLookup, near_candidates
from .renamed import Shape, hopeless, rarity_needed
from .settings import QuerySettings

_MAX_REPEATS = 4  # occurrences of one k-gram per document considered
_CHAINS_PER_DOC = 4  # chains of one document that are scored
_COMPLETED_DOCS = 4  # documents whose postings of sampled keys are read (most rare hits first)


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


def _window_argmins(hashes: np.ndarray, window: int) -> list[int]:
    """For every window of ``window`` hashes, the position of its smallest (as ``winnow``, by
    its `leftmost_minima`: an argmin over a sliding window view cost 46 us for a query's 420
    k-grams here, these 32)."""
    if len(hashes) < window:
        return [int(np.argmin(hashes))] if len(hashes) else []
    argmins: list[int] = leftmost_minima(hashes, window).tolist()
    return argmins


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
        near = NearLookup(self.store, tokens, self.settings.max_postings, self.settings.near_duplicates)
        found = self._exact(tokens, focus, near)
        if not found and near.wanted:
            found = near_candidates(self.store, tokens, near, self.settings.min_chars)
        found = [c for c in found if c.q_end > focus]
        return render(self.store, tokens, found, self.settings.max_matches)

    def _exact(self, tokens: Tokens, focus: int, near: NearLookup) -> list[Candidate]:
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
        sampled, df = sampled_keys(found, len(keys))
        eff_at = effective_positions(at[found.qi], sampled[found.qi], len(tokens) + 1)
        files = files_per_key(found, sampled, key_files(self.store, keys[sampled], df[sampled]))
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
        support = diagonal_support(
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
        viable = viable[~hopeless(exact, rarity, starts, rarity_needed(False, p.window))[viable]]
        prefix_list = prefix.tolist()
        shape = Shape(tokens, qa)
        argmins = _window_argmins(qa, p.window)
        line_list = tokens.line.tolist()
        n_tok = len(tokens)
        out: list[Candidate] = []
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
                chains = chained[signature] = link_chains(
                    chain_hits(q, s, e, self._max_gap, self._max_drift),
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
        (``sampled``, ``df``: as ``sampled_keys``), for the documents that the query's rarer
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
        shape: Shape,
        doc: int,
        chain: tuple[int, list[int]],
        extent: tuple[int, int, int, float],
        hits: FingerprintHits,
        evidence: tuple[list[bool], np.ndarray, list[int], list[int], list[int]],
    ) -> Candidate | None:
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
            if float(rarity[idx].sum()) < rarity_needed(spread, self.store.params.window):
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

        return Candidate(
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
