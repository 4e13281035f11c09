"""Fingerprints of many documents at once, the same arrays as `fingerprint` gives each one.

A build fingerprints one file at a time, and a file's fingerprinting is some hundred numpy calls
whatever its size: 0.24 ms of fixed cost a file, 42 % of fingerprinting on the gigabyte's
first 100 MB (8,269 files, most of a few kilobytes). Here the documents' token streams are
concatenated and hashed, winnowed and filtered in one pass each, then cut apart again:

- A k-gram's hash does not depend on where it lies (`_windowed_sums`), and one whose tokens all
  lie in one document is that document's k-gram: the ones that straddle two are dropped.
- An identifier whose previous occurrence is in an earlier document is, in every k-gram of its
  own document, a first occurrence, as it is in that document alone (`_structure` counts the
  previous occurrence only inside the k-gram).
- Winnowing keeps the leftmost minimum of each window of a document's k-grams: the windows of
  the concatenation that lie inside one document, and for a document with fewer k-grams than a
  window, the minimum of all of them.
"""

from __future__ import annotations

import itertools

import numpy as np

from .config import FingerprintParams
from .fingerprint import (
    _EMPTY_SIGNATURE,
    BandKeys,
    Fingerprints,
    _band_constants,
    _kgram_hashes_at,
    _mix,
    _no_bands,
    _structure,
    kgram_hashes,
    leftmost_minima,
    minhash_permutations,
    repeat_pairs,
    unique_sorted,
)
from .normalize import Tokens
from .packed import concat_ranges


def _winnow_segments(hashes: np.ndarray, starts: np.ndarray, sizes: np.ndarray, window: int) -> np.ndarray:
    """``winnow(hashes[s : s + m]) + s`` for each segment ``(s, m)`` (sorted, disjoint; m <= 0:
    none), concatenated: sorted, unique."""
    long = sizes > window
    picks = np.empty(0, dtype=np.int64)
    if long.any():
        minima = leftmost_minima(hashes, window)  # of every window that starts at 0 .. n - window
        picks = unique_sorted(minima[concat_ranges(starts[long], sizes[long] - window + 1)])
    short = (sizes > 0) & ~long
    if short.any():  # the minimum of all (few documents: a loop)
        segments = zip(starts[short].tolist(), sizes[short].tolist(), strict=True)
        lone = [s + int(np.argmin(hashes[s : s + m])) for s, m in segments]
        picks = np.sort(np.concatenate([picks, np.array(lone, dtype=np.int64)]))
    return picks


def fingerprint_many(docs: list[Tokens], params: FingerprintParams) -> list[Fingerprints]:
    """``[fingerprint(t, params) for t in docs]``, computed together."""
    if not docs:
        return []
    k, window = params.kgram, params.window
    n = np.array([len(t) for t in docs], dtype=np.int64)
    starts = np.cumsum(n) - n
    abstract = np.concatenate([t.abstract for t in docs])
    concrete = np.concatenate([t.concrete for t in docs])
    comment = np.concatenate([t.comment for t in docs])
    line = np.concatenate([t.line for t in docs])
    end_line = np.concatenate([t.end_line for t in docs])
    later, prev = repeat_pairs(concrete, abstract)
    structure = _structure(abstract, k, (later, prev))
    text = _winnow_segments(structure, starts, n - k + 1, window)
    parts = [(structure[text], _kgram_hashes_at(concrete, k, text), text, text + k - 1)]
    # The code without comments, of the documents that have comments.
    in_comments = np.concatenate(([0], np.cumsum(comment)))
    code_n = n - (in_comments[starts + n] - in_comments[starts])
    has_comment = (code_n < n) & (n > 0)
    if has_comment.any():
        code = (~comment).nonzero()[0]
        code_at = np.cumsum(~comment) - 1  # a code token's position in the code
        code_structure = _structure(abstract[code], k, (code_at[later], code_at[prev]))
        code_starts = np.cumsum(code_n) - code_n
        c = _winnow_segments(code_structure, code_starts, np.where(has_comment, code_n - k + 1, 0), window)
        first, last = code[c], code[c + k - 1]
        bridge = last - first > k - 1
        c, first, last = c[bridge], first[bridge], last[bridge]
        parts.append((code_structure[c], _kgram_hashes_at(concrete[code], k, c), first, last))
    keys, conc, pos, last = (np.concatenate(column) for column in zip(*parts, strict=True))
    doc = np.searchsorted(starts, pos, side="right") - 1
    # Each document's text picks, then its bridges (as `fingerprint` concatenates them).
    part = np.repeat(np.arange(len(parts)), [len(p[0]) for p in parts])
    order = np.argsort(doc * len(parts) + part, kind="stable")
    keys, conc, pos, last, doc = keys[order], conc[order], pos[order], last[order], doc[order]
    first_line = line[pos]
    span = np.minimum(end_line[last] - first_line, 0xFFFF).astype(np.uint32)
    meta = (conc & np.uint64(0xFFFF)).astype(np.uint32) | (span << np.uint32(16))
    local = (pos - starts[doc]).astype(np.uint32)
    lines = first_line.astype(np.uint32)
    bounds = np.concatenate(([0], np.cumsum(np.bincount(doc, minlength=len(docs))))).tolist()
    return [
        Fingerprints(keys=keys[a:b], pos=local[a:b], line=lines[a:b], meta=meta[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def minhash_many(docs: list[Tokens], params: FingerprintParams) -> list[BandKeys]:
    """``[minhash_bands(t, params, stride=params.minhash_lines) for t in docs]`` (a build's
    disjoint windows), computed together: a shingle whose tokens lie in two documents is in no
    window, and the windows of all documents are reduced and hashed at once."""
    lines, shingle = params.minhash_lines, params.minhash_shingle
    n = np.array([len(t) for t in docs], dtype=np.int64)
    starts = np.cumsum(n) - n
    total = int(n.sum())
    if total == 0:
        return [_no_bands() for _ in docs]
    line = np.concatenate([t.line for t in docs])
    is_first = np.ones(total, dtype=bool)
    np.not_equal(line[1:], line[:-1], out=is_first[1:])
    is_first[starts[n > 0]] = True  # a document's first token starts a line of its own
    firsts = is_first.nonzero()[0]  # each line's first token
    line_start = np.searchsorted(firsts, starts)  # each document's first line
    n_lines = np.searchsorted(firsts, starts + n) - line_start
    m = n - shingle + 1  # shingles of each document
    count = np.where((n_lines >= lines) & (m > 0), n_lines // lines, 0)  # its windows
    first_window = np.cumsum(count) - count
    windows = int(count.sum())
    a, b = minhash_permutations(params.num_perm)
    sig = np.full((params.num_perm, windows), _EMPTY_SIGNATURE, dtype=np.uint32)
    has = count > 0
    if windows:
        shingles = kgram_hashes(np.concatenate([t.abstract for t in docs]), shingle)
        at = concat_ranges(starts[has], m[has])  # the shingles of documents with windows
        doc = np.repeat(has.nonzero()[0], m[has])
        group = (is_first.cumsum()[at] - 1 - line_start[doc]) // lines  # a shingle's window
        whole = group < count[doc]  # in a window of whole lines
        at, group = at[whole], first_window[doc[whole]] + group[whole]
        if len(at):
            begins = np.ones(len(group), dtype=bool)
            np.not_equal(group[1:], group[:-1], out=begins[1:])
            begins = begins.nonzero()[0]
            phv = np.empty((params.num_perm, len(at)), dtype=np.uint32)
            np.multiply(a[:, None], shingles[at].astype(np.uint32), out=phv)
            phv += b[:, None]
            sig[:, group[begins]] = np.minimum.reduceat(phv, begins, axis=1)
    bands = sig.T.astype(np.uint64).reshape(windows, params.minhash_bands, params.minhash_rows)
    powers, salt = _band_constants(params.minhash_bands, params.minhash_rows)
    keys = _mix((bands * powers).sum(axis=2, dtype=np.uint64) + salt).reshape(-1)
    # Each window's token range: from its first line's first token to the next window's.
    local = np.arange(windows, dtype=np.int64) - np.repeat(first_window, count)
    first_line = np.repeat(line_start, count) + local * lines
    offset = np.repeat(starts, count)
    bounds = np.concatenate((firsts, [total]))
    begin, end = (bounds[first_line] - offset).tolist(), (bounds[first_line + lines] - offset).tolist()
    window = np.repeat(local, params.minhash_bands)
    per = params.minhash_bands
    out = []
    for w, c in zip(first_window.tolist(), count.tolist(), strict=True):
        ranges = list(zip(begin[w : w + c], end[w : w + c], strict=True))
        out.append(BandKeys(keys[w * per : (w + c) * per], window[w * per : (w + c) * per], ranges))
    return out
