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
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = h ^ (h >> np.uint64(31))
    return mixed


def kgram_hashes(ids: np.ndarray, k: int) -> np.ndarray:
    """Hash of every k consecutive ids (``len(ids) - k + 1`` values; empty when shorter)."""
    n = len(ids) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(n, dtype=np.uint64)
        for j in range(k):
            h = h * _P + ids[j : j + n]
        return _mix(h)


def structure_hashes(tokens: Tokens, k: int) -> np.ndarray:
    """Hash of every k-gram of the abstract stream, keeping which identifiers are the same.

    An identifier becomes the distance back to its previous occurrence inside the k-gram (0 for
    a first occurrence), as in Baker's parameterised matching: ``a = b + a`` and ``x = y + x``
    hash alike, ``x = y + z`` does not. Consistent renaming cannot change these hashes, but
    unrelated code with the same shape rarely shares its pattern of repeated names.
    """
    n = len(tokens)
    m = n - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    ids = tokens.concrete
    ident = np.flatnonzero(tokens.abstract == PLACEHOLDER_ID)
    order = ident[np.argsort(ids[ident], kind="stable")]
    same = ids[order[1:]] == ids[order[:-1]]
    back = np.full(n, k, dtype=np.int64)
    back[order[1:][same]] = (order[1:] - order[:-1])[same]
    is_ident = tokens.abstract == PLACEHOLDER_ID
    with np.errstate(over="ignore"):
        distance_ids = _mix(np.arange(k + 1, dtype=np.uint64) + np.uint64(PLACEHOLDER_ID))
        h = np.zeros(m, dtype=np.uint64)
        for t in range(k):
            d = np.where(back[t : t + m] <= t, back[t : t + m], 0)
            v = np.where(is_ident[t : t + m], distance_ids[d], tokens.abstract[t : t + m])
            h = h * _P + v
        return _mix(h)


def winnow(hashes: np.ndarray, window: int) -> np.ndarray:
    """Positions kept by winnowing (sorted, unique). Short inputs keep their minimum."""
    n = len(hashes)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if n <= window:
        return np.array([int(np.argmin(hashes))], dtype=np.int64)
    views = np.lib.stride_tricks.sliding_window_view(hashes, window)
    picks = np.argmin(views, axis=1) + np.arange(len(views))
    return np.unique(picks)


@dataclass(frozen=True)
class CodeStream:
    """The k-grams of a text's code with its comments taken out."""

    first: np.ndarray  # int64 token index (in the whole stream) of each k-gram's first token
    last: np.ndarray  # int64 token index of its last token
    structure: np.ndarray  # uint64 structure hash (as ``structure_hashes``)
    concrete: np.ndarray  # uint64 hash of the concrete k-gram
    bridge: np.ndarray  # bool: the k-gram straddles a comment (it is not a k-gram of the text)


def code_stream(tokens: Tokens, k: int) -> CodeStream | None:
    """K-grams of the code without comments; None when the text has no comment to take out
    (then they are the text's own k-grams) or too little code."""
    if not tokens.comment.any():
        return None
    code = np.flatnonzero(~tokens.comment)
    if len(code) < k:
        return None
    sub = tokens.take(code)
    first, last = code[: len(code) - k + 1], code[k - 1 :]
    return CodeStream(
        first=first,
        last=last,
        structure=structure_hashes(sub, k),
        concrete=kgram_hashes(sub.concrete, k),
        bridge=last - first > k - 1,
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
    abstract = structure_hashes(tokens, k)
    if len(abstract) == 0:
        empty = np.empty(0, dtype=np.uint32)
        return Fingerprints(np.empty(0, dtype=np.uint64), empty, empty, empty)
    concrete = kgram_hashes(tokens.concrete, k)
    pos = winnow(abstract, params.window)
    keys, last, conc = abstract[pos], pos + k - 1, concrete[pos]
    cs = code_stream(tokens, k)
    if cs is not None:
        # Winnowed over the whole code stream (so its guarantee holds), kept where it differs
        # from the text's own k-grams.
        picks = winnow(cs.structure, params.window)
        picks = picks[cs.bridge[picks]]
        keys = np.concatenate([keys, cs.structure[picks]])
        conc = np.concatenate([conc, cs.concrete[picks]])
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
    """datasketch's affine32 permutations (odd ``a``), drawn once per process."""
    from datasketch import MinHash  # 0.4 s to import: paid once, and not by CLI start-up

    a, b = MinHash(num_perm=num_perm, seed=_MINHASH_SEED, scheme="affine32").permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


@dataclass(frozen=True)
class BandKeys:
    """LSH band keys of line windows."""

    keys: np.ndarray  # uint64
    window: np.ndarray  # int64 index of the window the key belongs to
    ranges: list[tuple[int, int]]  # token range of each window


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
    is_first = np.r_[True, tokens.line[1:] != tokens.line[:-1]]
    firsts = np.flatnonzero(is_first)
    n_lines = len(firsts)
    shingles = kgram_hashes(tokens.abstract, params.minhash_shingle)
    if n_lines < lines or len(shingles) == 0:
        return _no_bands()
    a, b = minhash_permutations(params.num_perm)
    with np.errstate(over="ignore"):
        phv = shingles.astype(np.uint32)[:, None] * a + b
    line_of = (np.cumsum(is_first) - 1)[: len(shingles)]
    per_line = np.full((n_lines, params.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    present, starts = np.unique(line_of, return_index=True)
    per_line[present] = np.minimum.reduceat(phv, starts, axis=0)
    if stride == lines:
        n_win = n_lines // lines
        sig = per_line[: n_win * lines].reshape(n_win, lines, params.num_perm).min(axis=1)
    else:
        sig = np.lib.stride_tricks.sliding_window_view(per_line, lines, axis=0).min(axis=-1)[::stride]
    starts_line = np.arange(0, len(sig) * stride, stride)
    bounds = np.r_[firsts, n_tok]
    ranges = [(int(bounds[s]), int(bounds[s + lines])) for s in starts_line]
    bands = sig.astype(np.uint64).reshape(len(sig), params.minhash_bands, params.minhash_rows)
    with np.errstate(over="ignore"):
        key = np.zeros((len(sig), params.minhash_bands), dtype=np.uint64)
        for r in range(params.minhash_rows):
            key = key * _P + bands[:, :, r]
        salt = np.arange(params.minhash_bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        key = _mix(key + salt)
    return BandKeys(
        keys=key.reshape(-1),
        window=np.repeat(np.arange(len(sig)), params.minhash_bands),
        ranges=ranges,
    )
