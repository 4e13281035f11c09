"""Fingerprints: winnowed k-gram hashes for exact spans, windowed MinHash band keys for near ones.

Winnowing (Schleimer et al., the MOSS algorithm) keeps the minimum k-gram hash of every window of
``window`` consecutive k-grams. Any run of ``window + kgram - 1`` tokens shared by two texts
therefore shares at least one kept fingerprint, whatever the alignment, while only about
``2 / (window + 1)`` of the k-grams are stored. Queries look up *all* their k-grams.

Fingerprints hash the *abstract* stream (identifiers abstracted) so that renamed copies match; a
16-bit hash of the *concrete* k-gram travels with each one to tell verbatim copies from renamed.

Comments are part of the token stream, so a copy with its comments stripped shares with its
source only the code runs between comments, and in doc-commented code (a Javadoc line before
every field) those runs are shorter than a k-gram. The k-grams of the code with the comments
taken out that straddle a comment ("bridges") are indexed too, and queries look them up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import FingerprintParams
from .normalize import PLACEHOLDER_ID, Tokens

_P = np.uint64(0x100000001B3)  # FNV prime: odd, so the polynomial stays injective mod 2^64
_MINHASH_SEED = 1


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits."""
    # In place after the first step, which copies: a fifth of the time of five new arrays.
    # (Integer arrays wrap silently in numpy; only scalar arithmetic warns on overflow.)
    h = h ^ (h >> np.uint64(30))
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


# Powers of the polynomial's prime and of its inverse (P is odd, so it has one mod 2^64), which
# turn every k-gram's polynomial into a difference of two prefix sums: a handful of passes over
# the stream whatever k is, where Horner's rule made k of them (k = 14: 3-4x faster).
_P_INV = np.uint64(pow(int(_P), -1, 2**64))
_POWERS = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))  # replaced whole: threads


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**i`` and ``P**-i`` mod 2^64 for ``i < n`` (views of tables grown by doubling)."""
    global _POWERS
    powers = _POWERS
    if len(powers[0]) < n:
        size = max(n, 2 * len(powers[0]), 4096)
        tables = []
        for base in (_P, _P_INV):
            table = np.full(size, base, dtype=np.uint64)
            table[0] = 1
            tables.append(np.cumprod(table))  # wraps mod 2^64, like the products it replaces
        powers = _POWERS = (tables[0], tables[1])
    return powers[0][:n], powers[1][:n]


def _windowed_sums(prefix: np.ndarray, before: np.ndarray, k: int) -> np.ndarray:
    """``P**(j+k-1) * (prefix[j+k-1] - before[j])`` mixed, for every k-gram ``j``: the
    polynomial ``sum(x[j+t] * P**(k-1-t))`` that Horner's rule gives, when ``prefix`` holds the
    running sums of ``x[i] * P**-i`` and ``before[j]`` those of the terms before the k-gram."""
    m = len(prefix) - k + 1
    h = prefix[k - 1 :] - before[:m]
    h *= _powers(len(prefix))[0][k - 1 :]
    return _mix(h)


def _running_sums(ids: np.ndarray) -> np.ndarray:
    """0, then the running sums of ``ids[i] * P**-i`` (`_windowed_sums` takes k-grams from them)."""
    before = np.zeros(len(ids) + 1, dtype=np.uint64)
    np.multiply(ids.astype(np.uint64, copy=False), _powers(len(ids))[1], out=before[1:])
    before.cumsum(out=before)
    return before


def kgram_hashes(ids: np.ndarray, k: int) -> np.ndarray:
    """Hash of every k consecutive ids (``len(ids) - k + 1`` values; empty when shorter)."""
    if len(ids) - k + 1 <= 0:
        return np.empty(0, dtype=np.uint64)
    before = _running_sums(ids)
    return _windowed_sums(before[1:], before, k)


def _kgram_hashes_at(ids: np.ndarray, k: int, at: np.ndarray) -> np.ndarray:
    """``kgram_hashes(ids, k)[at]``, with the windows and the mixing done at ``at`` only."""
    before = _running_sums(ids)
    h = before[at + k] - before[at]
    h *= _powers(len(ids))[0][at + k - 1]
    return _mix(h)


def structure_hashes(tokens: Tokens, k: int) -> np.ndarray:
    """Hash of every k-gram of the abstract stream, keeping which identifiers are the same.

    An identifier becomes the distance back to its previous occurrence inside the k-gram (0 for
    a first occurrence), as in Baker's parameterised matching: ``a = b + a`` and ``x = y + x``
    hash alike, ``x = y + z`` does not. Consistent renaming cannot change these hashes, but
    unrelated code with the same shape rarely shares its pattern of repeated names.
    """
    return _structure(tokens.abstract, k, _repeats(tokens))


def _repeats(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """(later, prev): every identifier that occurred before, and its previous occurrence.

    Identifiers are never in comments (their words are kept as written), so the code without
    its comments has the same pairs at its own positions: `code_stream` maps these instead of
    sorting its identifiers again."""
    return repeat_pairs(tokens.concrete, tokens.abstract)


def repeat_pairs(ids: np.ndarray, abstract: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_repeats` of the tokens with these concrete and abstract ids."""
    ident = (abstract == PLACEHOLDER_ID).nonzero()[0]
    order = ident[ids[ident].argsort(kind="stable")]
    same = ids[order[1:]] == ids[order[:-1]]
    return order[1:][same], order[:-1][same]


@lru_cache(maxsize=8)
def _distance_ids(k: int) -> np.ndarray:
    """What an identifier at distance ``d`` (0: first in its k-gram) stands for in a k-gram."""
    return _mix(np.arange(k + 1, dtype=np.uint64) + np.uint64(PLACEHOLDER_ID))


def _structure(abstract: np.ndarray, k: int, repeats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    n = len(abstract)
    if n - k + 1 <= 0:
        return np.empty(0, dtype=np.uint64)
    is_ident = abstract == PLACEHOLDER_ID
    later, prev = repeats
    near = later - prev < k
    later, prev = later[near], prev[near]
    distance_ids = _distance_ids(k)
    # In k-gram j, identifier i (at offset i - j) is distance_ids[i - prev] when its previous
    # occurrence is in the k-gram too (prev >= j), else distance_ids[0]. So every identifier is
    # distance_ids[0] in the running sums, and the difference (`extra`) is a term of the k-grams
    # j <= prev that hold i: it enters the sums at i like any term but leaves them after prev.
    inv = _powers(n)[1]
    before = np.zeros(n + 1, dtype=np.uint64)
    terms = before[1:]
    np.multiply(np.where(is_ident, distance_ids[0], abstract), inv, out=terms)
    extra = distance_ids[later - prev] - distance_ids[0]
    extra *= inv[later]
    prefix = terms.copy()
    prefix[later] += extra
    prefix.cumsum(out=prefix)
    before[prev + 1] += extra  # one later occurrence per prev: no index repeats
    before.cumsum(out=before)
    return _windowed_sums(prefix, before, k)


def winnow(hashes: np.ndarray, window: int) -> np.ndarray:
    """Positions kept by winnowing (sorted, unique). Short inputs keep their minimum."""
    n = len(hashes)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if n <= window:
        return np.array([int(np.argmin(hashes))], dtype=np.int64)
    return unique_sorted(leftmost_minima(hashes, window))


def leftmost_minima(hashes: np.ndarray, window: int) -> np.ndarray:
    """Position of the leftmost minimum of every window of ``window`` values (``n > window``)."""
    # By doubling: windows of 1, 2, 4, ... combined two overlapping at a time (the left one's
    # pick wins ties, so the pick stays the leftmost). log2(window) passes over the array
    # instead of an argmin per window (2x faster at 11).
    n = len(hashes)
    value, pos = hashes, np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    width = 1
    while width < window:
        step = min(width, window - width)
        left, right = value[: len(value) - step], value[step:]
        take_right = right < left
        value = np.minimum(left, right)
        pos = np.where(take_right, pos[step:], pos[: len(pos) - step])
        width += step
    return pos


def unique_sorted(pos: np.ndarray) -> np.ndarray:
    """``pos`` (non-decreasing) without repeats, as int64."""
    # Consecutive windows' picks never decrease (a window's leftmost minimum stays the pick
    # until it leaves the window or a smaller value enters), so unique is a mask of changes.
    keep = np.ones(len(pos), dtype=bool)
    np.not_equal(pos[1:], pos[:-1], out=keep[1:])
    picks: np.ndarray = pos[keep].astype(np.int64)
    return picks


@dataclass(frozen=True)
class CodeStream:
    """The k-grams of a text's code with its comments taken out."""

    k: int
    ids: np.ndarray  # concrete ids of the code's tokens
    first: np.ndarray  # int64 token index (in the whole stream) of each k-gram's first token
    last: np.ndarray  # int64 token index of its last token
    structure: np.ndarray  # uint64 structure hash (as ``structure_hashes``)

    @property
    def bridge(self) -> np.ndarray:
        """bool: the k-gram straddles a comment (it is not a k-gram of the text)."""
        straddles: np.ndarray = self.last - self.first > self.k - 1
        return straddles

    def concrete_at(self, at: np.ndarray) -> np.ndarray:
        """uint64 hashes of the concrete k-grams ``at``: hashed where asked only (a build keeps a
        sixth of them, a query the bridges)."""
        return _kgram_hashes_at(self.ids, self.k, at)


def code_stream(
    tokens: Tokens, k: int, repeats: tuple[np.ndarray, np.ndarray] | None = None
) -> CodeStream | None:
    """K-grams of the code without comments; None when the text has no comment to take out
    (then they are the text's own k-grams) or too little code. ``repeats``: the text's
    `_repeats`, when the caller has them."""
    comment = tokens.comment
    if not comment.any():
        return None
    code = (~comment).nonzero()[0]
    if len(code) < k:
        return None
    later, prev = _repeats(tokens) if repeats is None else repeats
    at = np.cumsum(~comment) - 1  # a code token's position in the code
    return CodeStream(
        k=k,
        ids=tokens.concrete[code],
        first=code[: len(code) - k + 1],
        last=code[k - 1 :],
        structure=_structure(tokens.abstract[code], k, (at[later], at[prev])),
    )


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of one document, ready to be stored."""

    keys: np.ndarray  # uint64 abstract k-gram hash
    pos: np.ndarray  # uint32 token position of the k-gram
    line: np.ndarray  # uint32 1-based line of its first token
    meta: np.ndarray  # uint32: concrete 16-bit hash | (line span << 16)


def fingerprint(tokens: Tokens, params: FingerprintParams) -> Fingerprints:
    """Winnowed fingerprints of a whole document."""
    k = params.kgram
    repeats = _repeats(tokens)
    abstract = _structure(tokens.abstract, k, repeats)
    if len(abstract) == 0:
        empty = np.empty(0, dtype=np.uint32)
        return Fingerprints(np.empty(0, dtype=np.uint64), empty, empty, empty)
    # The concrete k-grams are hashed at the kept positions only (a sixth of them).
    pos = winnow(abstract, params.window)
    keys, last, conc = abstract[pos], pos + k - 1, _kgram_hashes_at(tokens.concrete, k, pos)
    cs = code_stream(tokens, k, repeats)
    if cs is not None:
        # Winnowed over the whole code stream (so its guarantee holds), kept where it differs
        # from the text's own k-grams (the bridges, computed at the picks only).
        picks = winnow(cs.structure, params.window)
        picks = picks[cs.last[picks] - cs.first[picks] > k - 1]
        keys = np.concatenate([keys, cs.structure[picks]])
        conc = np.concatenate([conc, cs.concrete_at(picks)])
        last = np.concatenate([last, cs.last[picks]])
        pos = np.concatenate([pos, cs.first[picks]])
    first_line = tokens.line[pos]
    span = np.minimum(tokens.end_line[last] - first_line, 0xFFFF).astype(np.uint32)
    meta = (conc & np.uint64(0xFFFF)).astype(np.uint32) | (span << np.uint32(16))
    return Fingerprints(
        keys=keys,
        pos=pos.astype(np.uint32),
        line=first_line.astype(np.uint32),
        meta=meta,
    )


@lru_cache(maxsize=8)
def minhash_permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations (odd ``a``), drawn as its ``MinHash`` draws them from
    the same seed: importing datasketch (it imports scipy) cost a build 0.4-2.4 s of CPU for two
    arrays (tests/index/test_fingerprint.py compares them with datasketch's own)."""
    gen = np.random.RandomState(_MINHASH_SEED)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


@dataclass(frozen=True)
class BandKeys:
    """LSH band keys of line windows."""

    keys: np.ndarray  # uint64
    window: np.ndarray  # int64 index of the window the key belongs to
    ranges: list[tuple[int, int]]  # token range of each window


_EMPTY_SIGNATURE = np.uint32(0xFFFFFFFF)


@lru_cache(maxsize=8)
def _band_constants(bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**(rows - 1 - r)`` for each row ``r`` of a band, and each band's salt."""
    powers = np.full(rows, _P, dtype=np.uint64)
    powers[-1] = 1
    powers = np.cumprod(powers[::-1])[::-1].copy()
    return powers, np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def _no_bands() -> BandKeys:
    return BandKeys(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), [])


def minhash_bands(tokens: Tokens, params: FingerprintParams, stride: int) -> BandKeys:
    """MinHash signatures of every window of ``minhash_lines`` non-empty lines (one every
    ``stride`` lines), cut into LSH band keys.

    A shingle belongs to the line of its first token, so a window's signature is the
    element-wise minimum of its lines' signatures: overlapping query windows cost one
    sliding minimum instead of one MinHash each. Permutations are datasketch's affine32 ones.
    """
    n_tok = len(tokens)
    lines = params.minhash_lines
    if n_tok == 0:
        return _no_bands()
    is_first = np.ones(n_tok, dtype=bool)
    np.not_equal(tokens.line[1:], tokens.line[:-1], out=is_first[1:])
    firsts = is_first.nonzero()[0]
    n_lines = len(firsts)
    shingles = kgram_hashes(tokens.abstract, params.minhash_shingle)
    if n_lines < lines or len(shingles) == 0:
        return _no_bands()
    a, b = minhash_permutations(params.num_perm)
    line_of = (is_first.cumsum() - 1)[: len(shingles)]
    # Disjoint windows (what a build asks for) are reduced at once from their shingles; others
    # from their lines' minima. Permutations along the first axis: the reductions then run
    # along contiguous rows (a third faster than along columns).
    group, count = (line_of // lines, n_lines // lines) if stride == lines else (line_of, n_lines)
    cut = int(np.searchsorted(group, count))  # groups are sorted; the shingles of whole windows
    sig = np.full((params.num_perm, count), _EMPTY_SIGNATURE, dtype=np.uint32)
    if cut:
        group = group[:cut]
        starts = np.concatenate(([True], group[1:] != group[:-1])).nonzero()[0]
        phv = np.empty((params.num_perm, cut), dtype=np.uint32)
        np.multiply(a[:, None], shingles[:cut].astype(np.uint32), out=phv)
        phv += b[:, None]
        sig[:, group[starts]] = np.minimum.reduceat(phv, starts, axis=1)
    if stride != lines:
        width = 1  # sliding minimum over `lines` lines, by doubling the span
        while width < lines:
            step = min(width, lines - width)
            sig = np.minimum(sig[:, : sig.shape[1] - step], sig[:, step:])
            width += step
        sig = sig[:, ::stride]
    sig = sig.T
    starts_line = np.arange(0, len(sig) * stride, stride)
    bounds = np.concatenate((firsts, [n_tok]))
    ranges = list(zip(bounds[starts_line].tolist(), bounds[starts_line + lines].tolist(), strict=True))
    bands = sig.astype(np.uint64).reshape(len(sig), params.minhash_bands, params.minhash_rows)
    # Horner's rule over a band's rows, as one weighted sum (mod 2^64 both ways).
    powers, salt = _band_constants(params.minhash_bands, params.minhash_rows)
    key = _mix((bands * powers).sum(axis=2, dtype=np.uint64) + salt)
    return BandKeys(
        keys=key.reshape(-1),
        window=np.repeat(np.arange(len(sig)), params.minhash_bands),
        ranges=ranges,
    )
