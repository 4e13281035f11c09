"""Verification: a document's hits grouped into chains that advance in both texts with a bounded
drift, and chains linked into groups along their diagonals."""

from __future__ import annotations

import bisect

import numpy as np

from index.distinct import distinct_counts

_MAX_ACTIVE = 24  # chains a new hit may extend (the most recent ones)


def chain_hits(q: np.ndarray, s: np.ndarray, e: np.ndarray, max_gap: int, max_drift: int) -> list[list[int]]:
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


def link_chains(
    chains: list[list[int]], q: list[int], s: list[int], e: list[int], max_gap: int, max_skip: int
) -> list[list[int]]:
    """Join chains that follow each other in the query while the source skips ahead by up to
    ``max_skip`` tokens: a copy with its comments stripped (or lines deleted) skips doc comments
    of the source, far longer than the drift that edits leave. Done on whole chains, not hits, so
    that a repeat of a k-gram further down the source cannot pull a copy off its diagonal."""
    if len(chains) < 2:
        return chains
    if len(chains) >= LINK_BY_DIAGONAL:
        return link_by_diagonal(chains, q, s, e, max_gap, max_skip)
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


# Chains from which `link_chains` finds a chain's group by its diagonal (`link_by_diagonal`) rather
# than trying every group in reach: linking the 500 gigabyte probes' documents, best of 9,
# 48-127 chains 3.2 -> 2.1 ms all told, 128 or more (a font table's 337) 3.0 -> 1.3; fewer
# than 48, the bisections cost more than they spare (under 16: 5.7 -> 6.4 ms).
LINK_BY_DIAGONAL = 48


def link_by_diagonal(
    chains: list[list[int]], q: list[int], s: list[int], e: list[int], max_gap: int, max_skip: int
) -> list[list[int]]:
    """`link_chains`, the same groups, for many chains: the groups are kept sorted by the diagonal of
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


def diagonal_support(group: np.ndarray, diag: np.ndarray, n_groups: int, width: int) -> np.ndarray:
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
