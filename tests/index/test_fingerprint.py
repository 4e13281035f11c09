from __future__ import annotations

import subprocess
import sys

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from index.config import FingerprintParams
from index.fingerprint import (
    fingerprint,
    kgram_hashes,
    minhash_bands,
    minhash_permutations,
    structure_hashes,
    winnow,
)
from index.normalize import tokenize

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
