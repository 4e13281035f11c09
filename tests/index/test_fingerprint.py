from __future__ import annotations

import subprocess
import sys

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from index.config import FingerprintParams
from index.fingerprint import _P as P
from index.fingerprint import (
    fingerprint,
    kgram_hashes,
    minhash_bands,
    minhash_permutations,
    structure_hashes,
    winnow,
)
from index.normalize import PLACEHOLDER_ID, Tokens, tokenize

CODE = """
def merge(left, right):
    out = []
    while left and right:
        if left[0] <= right[0]:
            out.append(left.pop(0))
        else:
            out.append(right.pop(0))
    return out + left + right
"""


def test_kgram_hashes_shape_and_stability_across_processes() -> None:
    ids = tokenize(CODE, "python").concrete
    h = kgram_hashes(ids, 5)
    assert len(h) == len(ids) - 4
    assert kgram_hashes(ids[:3], 5).size == 0
    script = (
        "from index.normalize import tokenize; from index.fingerprint import kgram_hashes;"
        f"print(int(kgram_hashes(tokenize({CODE!r}, 'python').concrete, 5)[0]))"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(other.stdout) == int(h[0])  # not Python's per-process salted hash()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=400), st.integers(1, 24))
def test_winnowing_keeps_a_fingerprint_in_every_window(values: list[int], window: int) -> None:
    hashes = np.array(values, dtype=np.uint64)
    picks = set(winnow(hashes, window).tolist())
    for start in range(0, max(1, len(values) - window + 1)):
        assert picks & set(range(start, start + window))


RENAMED = CODE.replace("left", "a").replace("right", "b").replace("out", "acc").replace("merge", "combine")


def test_structure_hashes_survive_consistent_renaming() -> None:
    a = structure_hashes(tokenize(CODE, "python"), 8)
    b = structure_hashes(tokenize(RENAMED, "python"), 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(
        kgram_hashes(tokenize(CODE, "python").concrete, 8),
        kgram_hashes(tokenize(RENAMED, "python").concrete, 8),
    )


def test_structure_hashes_see_which_names_repeat() -> None:
    same = structure_hashes(tokenize("a = b + a ; c = d", "python"), 6)
    renamed = structure_hashes(tokenize("x = y + x ; z = w", "python"), 6)
    different = structure_hashes(tokenize("x = y + z ; z = w", "python"), 6)
    assert np.array_equal(same, renamed)
    assert not np.array_equal(same, different)


def test_fingerprint_records_positions_lines_and_concrete_bits() -> None:
    tokens = tokenize(CODE, "python")
    params = FingerprintParams(kgram=6, window=4)
    fp = fingerprint(tokens, params)
    assert len(fp.keys) > 0
    assert np.array_equal(fp.line, tokens.line[fp.pos])
    concrete = kgram_hashes(tokens.concrete, 6)[fp.pos] & np.uint64(0xFFFF)
    assert np.array_equal(fp.meta & 0xFFFF, concrete.astype(np.uint32))


def test_minhash_permutations_are_datasketchs() -> None:
    a, b = minhash_permutations(18)
    ref = MinHash(num_perm=18, seed=1, scheme="affine32")
    assert np.array_equal(a, np.asarray(ref.permutations[0], dtype=np.uint32))
    assert np.array_equal(b, np.asarray(ref.permutations[1], dtype=np.uint32))


def test_minhash_bands_match_for_copies_and_differ_for_other_code() -> None:
    params = FingerprintParams(minhash_lines=4, minhash_bands=3, minhash_rows=4)
    text = CODE * 2
    a = minhash_bands(tokenize(text, "python"), params, stride=4)
    b = minhash_bands(tokenize(text.replace("    ", "  "), "python"), params, stride=4)
    assert len(a.keys) > 0 and np.array_equal(a.keys, b.keys)
    other = minhash_bands(tokenize("import os\nx = 1\ny = 2\nprint(x, y)\n" * 3, "python"), params, stride=4)
    assert not set(a.keys.tolist()) & set(other.keys.tolist())
    sliding = minhash_bands(tokenize(text, "python"), params, stride=1)
    # Every aligned window is also among the sliding ones.
    assert set(a.keys.tolist()) <= set(sliding.keys.tolist())


# Straightforward versions of the vectorised hashing (Horner's rule per k-gram offset, an argmin
# per window, a MinHash per line): the fingerprints and band keys must be the same arrays.
def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _ref_kgram(ids: np.ndarray, k: int) -> np.ndarray:
    m = len(ids) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = np.zeros(m, dtype=np.uint64)
    for j in range(k):
        h = h * P + ids[j : j + m]
    return _mix(h)


def _ref_structure(tokens: Tokens, k: int) -> np.ndarray:
    n, m = len(tokens), len(tokens) - k + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    distance = _mix(np.arange(k + 1, dtype=np.uint64) + np.uint64(PLACEHOLDER_ID))
    is_ident = tokens.abstract == PLACEHOLDER_ID
    back = np.full(n, k, dtype=np.int64)  # distance to the previous occurrence of the same name
    last: dict[int, int] = {}
    for i in np.flatnonzero(is_ident).tolist():
        name = int(tokens.concrete[i])
        if name in last:
            back[i] = i - last[name]
        last[name] = i
    h = np.zeros(m, dtype=np.uint64)
    for t in range(k):
        d = np.where(back[t : t + m] <= t, back[t : t + m], 0)
        h = h * P + np.where(is_ident[t : t + m], distance[d], tokens.abstract[t : t + m])
    return _mix(h)


def _ref_winnow(hashes: np.ndarray, window: int) -> np.ndarray:
    if len(hashes) <= window:
        return np.array([int(np.argmin(hashes))], dtype=np.int64)[: len(hashes)]
    views = np.lib.stride_tricks.sliding_window_view(hashes, window)
    return np.unique(np.argmin(views, axis=1) + np.arange(len(views)))


def _ref_fingerprint(tokens: Tokens, p: FingerprintParams) -> tuple[np.ndarray, ...]:
    k = p.kgram
    abstract, concrete = _ref_structure(tokens, k), _ref_kgram(tokens.concrete, k)
    if len(abstract) == 0:
        return (np.empty(0, np.uint64), *(np.empty(0, np.uint32),) * 3)
    pos = _ref_winnow(abstract, p.window)
    keys, last, conc = abstract[pos], pos + k - 1, concrete[pos]
    code = np.flatnonzero(~tokens.comment)
    if tokens.comment.any() and len(code) >= k:
        sub = tokens.take(code)
        structure, sub_concrete = _ref_structure(sub, k), _ref_kgram(sub.concrete, k)
        first, code_last = code[: len(code) - k + 1], code[k - 1 :]
        picks = _ref_winnow(structure, p.window)
        picks = picks[(code_last - first > k - 1)[picks]]
        keys = np.concatenate([keys, structure[picks]])
        conc = np.concatenate([conc, sub_concrete[picks]])
        last = np.concatenate([last, code_last[picks]])
        pos = np.concatenate([pos, first[picks]])
    span = np.minimum(tokens.end_line[last] - tokens.line[pos], 0xFFFF).astype(np.uint32)
    meta = (conc & np.uint64(0xFFFF)).astype(np.uint32) | (span << np.uint32(16))
    return keys, pos.astype(np.uint32), tokens.line[pos].astype(np.uint32), meta


def _ref_bands(tokens: Tokens, p: FingerprintParams, stride: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    lines, n_tok = p.minhash_lines, len(tokens)
    firsts = [i for i in range(n_tok) if i == 0 or tokens.line[i] != tokens.line[i - 1]]
    shingles = _ref_kgram(tokens.abstract, p.minhash_shingle)
    if len(firsts) < lines or len(shingles) == 0:
        return np.empty(0, np.uint64), []
    a, b = minhash_permutations(p.num_perm)
    per_line = np.full((len(firsts), p.num_perm), 2**32 - 1, dtype=np.uint32)
    line_of = np.searchsorted(np.array(firsts), np.arange(len(shingles)), side="right") - 1
    for s, line in zip(shingles.astype(np.uint32), line_of, strict=True):
        per_line[line] = np.minimum(per_line[line], s * a + b)
    starts = range(0, len(firsts) - lines + 1, stride)
    sig = np.array([per_line[s : s + lines].min(axis=0) for s in starts], dtype=np.uint64)
    bounds = [*firsts, n_tok]
    ranges = [(bounds[s], bounds[s + lines]) for s in starts]
    bands = sig.reshape(len(sig), p.minhash_bands, p.minhash_rows)
    key = np.zeros((len(sig), p.minhash_bands), dtype=np.uint64)
    for r in range(p.minhash_rows):
        key = key * P + bands[:, :, r]
    salt = np.arange(p.minhash_bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return _mix(key + salt).reshape(-1), ranges


# Few names and many repeats: ties among hashes, names repeated within a k-gram, comments.
_WORDS = ["a", "b", "a", "x", "if", "(", ")", "=", "+", "1", " ", "//", "#", "/*", "*", "return"]
_LINES = st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join)  # some blank


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_LINES, min_size=4, max_size=60).map("\n".join),
    st.integers(4, 16),
    st.integers(1, 12),
    st.integers(4, 7),
    st.integers(2, 5),
    st.sampled_from([(3, 6), (2, 2), (1, 5)]),
)
def test_fingerprints_and_bands_equal_the_straightforward_ones(
    text: str, kgram: int, window: int, lines: int, shingle: int, bands: tuple[int, int]
) -> None:
    p = FingerprintParams(
        kgram=kgram, window=window, minhash_lines=lines, minhash_shingle=shingle,
        minhash_bands=bands[0], minhash_rows=bands[1],
    )  # fmt: skip
    tokens = tokenize(text)
    assert np.array_equal(kgram_hashes(tokens.concrete, kgram), _ref_kgram(tokens.concrete, kgram))
    assert np.array_equal(structure_hashes(tokens, kgram), _ref_structure(tokens, kgram))
    fp = fingerprint(tokens, p)
    for got, want in zip((fp.keys, fp.pos, fp.line, fp.meta), _ref_fingerprint(tokens, p), strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    for stride in {lines, 1, 3}:
        got_bands = minhash_bands(tokens, p, stride)
        keys, ranges = _ref_bands(tokens, p, stride)
        assert np.array_equal(got_bands.keys, keys) and got_bands.ranges == ranges
        assert np.array_equal(got_bands.window, np.repeat(np.arange(len(ranges)), p.minhash_bands))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=200), st.integers(1, 24))
def test_winnow_equals_an_argmin_per_window(values: list[int], window: int) -> None:
    hashes = np.array(values, dtype=np.uint64)  # small values: ties everywhere
    got = winnow(hashes, window)
    assert got.dtype == np.int64 and np.array_equal(got, _ref_winnow(hashes, window))
