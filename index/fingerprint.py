"""Fingerprints: winnowed k-gram hashes for exact spans, windowed MinHash band keys for near ones.

Winnowing (Schleimer et al., the MOSS algorithm) keeps the minimum k-gram hash of every window of
``window`` consecutive k-grams. Any run of ``window + kgram - 1`` tokens shared by two texts
therefore shares at least one kept fingerprint, whatever the alignment, while only about
``2 / (window + 1)`` of the k-grams are stored. Queries look up *all* their k-grams.

Fingerprints hash the *abstract* stream (identifiers abstracted) so that renamed copies match; a
16-bit hash of the *concrete* k-gram travels with each one to tell verbatim copies from renamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from .config import FingerprintParams
from .normalize import Tokens

_P = np.uint64(0x100000001B3)  # FNV prime: odd, so the polynomial stays injective mod 2^64
_MINHASH_SEED = 1


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads polynomial hashes over all 64 bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


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
class Fingerprints:
    """Fingerprints of one document, ready to be stored."""

    keys: np.ndarray  # uint64 abstract k-gram hash
    pos: np.ndarray  # uint32 token position of the k-gram
    line: np.ndarray  # uint32 1-based line of its first token
    meta: np.ndarray  # uint32: concrete 16-bit hash | (line span << 16)


def fingerprint(tokens: Tokens, params: FingerprintParams) -> Fingerprints:
    """Winnowed fingerprints of a whole document."""
    k = params.kgram
    abstract = kgram_hashes(tokens.abstract, k)
    if len(abstract) == 0:
        empty = np.empty(0, dtype=np.uint32)
        return Fingerprints(np.empty(0, dtype=np.uint64), empty, empty, empty)
    concrete = kgram_hashes(tokens.concrete, k)
    pos = winnow(abstract, params.window)
    first_line = tokens.line[pos]
    last_line = tokens.end_line[pos + k - 1]
    span = np.minimum(last_line - first_line, 0xFFFF).astype(np.uint32)
    meta = (concrete[pos] & np.uint64(0xFFFF)).astype(np.uint32) | (span << np.uint32(16))
    return Fingerprints(
        keys=abstract[pos],
        pos=pos.astype(np.uint32),
        line=first_line.astype(np.uint32),
        meta=meta,
    )


def line_windows(tokens: Tokens, lines: int, stride: int) -> Iterator[tuple[int, int]]:
    """Token ranges ``[i, j)`` covering ``lines`` consecutive non-empty lines, every ``stride``."""
    if len(tokens) == 0:
        return
    # Index of the first token of each distinct (non-empty) line.
    firsts = np.flatnonzero(np.r_[True, tokens.line[1:] != tokens.line[:-1]])
    n_lines = len(firsts)
    bounds = np.r_[firsts, len(tokens)]
    if n_lines < lines:
        return
    for s in range(0, n_lines - lines + 1, stride):
        yield int(bounds[s]), int(bounds[s + lines])


@dataclass(frozen=True)
class BandKeys:
    """LSH band keys of line windows."""

    keys: np.ndarray  # uint64
    window: np.ndarray  # int64 index of the window the key belongs to
    ranges: list[tuple[int, int]]  # token range of each window


def minhash_bands(tokens: Tokens, params: FingerprintParams, stride: int) -> BandKeys:
    """MinHash (datasketch) of each line window's abstract shingles, cut into LSH band keys."""
    ranges = list(line_windows(tokens, params.minhash_lines, stride))
    if not ranges:
        return BandKeys(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), [])
    shingles = kgram_hashes(tokens.abstract, params.minhash_shingle) & np.uint64(0xFFFFFFFF)
    sets = []
    for i, j in ranges:
        sets.append(np.unique(shingles[i : max(i + 1, j - params.minhash_shingle + 1)]).tolist())
    from datasketch import MinHash  # 0.4 s to import: only builds and near-copy queries pay

    sigs = MinHash.bulk(
        sets, num_perm=params.num_perm, seed=_MINHASH_SEED, hashfunc=int, scheme="affine32"
    )
    hv = np.stack([s.hashvalues for s in sigs]).astype(np.uint64)
    bands = hv.reshape(len(ranges), params.minhash_bands, params.minhash_rows)
    with np.errstate(over="ignore"):
        key = np.zeros((len(ranges), params.minhash_bands), dtype=np.uint64)
        for r in range(params.minhash_rows):
            key = key * _P + bands[:, :, r]
        key = _mix(key + np.arange(params.minhash_bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return BandKeys(
        keys=key.reshape(-1),
        window=np.repeat(np.arange(len(ranges)), params.minhash_bands),
        ranges=ranges,
    )
