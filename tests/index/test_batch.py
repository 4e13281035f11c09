from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.batch import fingerprint_many, minhash_many
from index.builder import prepare_document, prepare_documents
from index.config import FingerprintParams
from index.fingerprint import fingerprint, minhash_bands
from index.normalize import tokenize
from index.sources import SourceFile

# Few names (identifiers repeat across documents), comments of every kind, empty and one-token
# documents, documents shorter than a k-gram or than a window, and all-comment ones.
_WORDS = ["a", "b", "a", "x", "if", "(", ")", "=", "+", "1", " ", "//", "#", "/*", "*", "return"]
_LINES = st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join)
_DOCS = st.lists(st.lists(_LINES, max_size=30).map("\n".join), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.integers(4, 16), st.integers(1, 12))
def test_fingerprints_of_many_documents_are_each_ones_own(texts: list[str], kgram: int, window: int) -> None:
    p = FingerprintParams(kgram=kgram, window=window)
    tokens = [tokenize(t) for t in texts]
    got = fingerprint_many(tokens, p)
    assert len(got) == len(texts)
    for g, t in zip(got, tokens, strict=True):
        want = fingerprint(t, p)
        for field in ("keys", "pos", "line", "meta"):
            a, b = getattr(g, field), getattr(want, field)
            assert a.dtype == b.dtype and np.array_equal(a, b), field


def test_documents_prepared_together_are_prepared_as_one_at_a_time() -> None:
    p = FingerprintParams()
    texts = ["", "x", "// only a comment\n", "def f(a):\n    return a + 1  # one\n" * 40, "int x = 1;\n" * 9]
    items = [(SourceFile(key=str(i), text=t, path=f"f{i}.py"), f"{i:040d}", p) for i, t in enumerate(texts)]
    together = prepare_documents(items)
    for item, got in zip(items, together, strict=True):
        want = prepare_document(item)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got.doc == want.doc and got.lines == want.lines and got.tokens == want.tokens
            for a, b in zip((*got.fp, *got.mh), (*want.fp, *want.mh), strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.integers(4, 7), st.integers(2, 16), st.sampled_from([(3, 6), (2, 2), (1, 5)]))
def test_band_keys_of_many_documents_are_each_ones_own(
    texts: list[str], lines: int, shingle: int, bands: tuple[int, int]
) -> None:
    p = FingerprintParams(
        minhash_lines=lines, minhash_shingle=shingle, minhash_bands=bands[0], minhash_rows=bands[1]
    )
    tokens = [tokenize(t) for t in texts]
    got = minhash_many(tokens, p)
    assert len(got) == len(texts)
    for g, t in zip(got, tokens, strict=True):
        want = minhash_bands(t, p, stride=lines)
        assert g.keys.dtype == want.keys.dtype and np.array_equal(g.keys, want.keys)
        assert g.window.dtype == want.window.dtype and np.array_equal(g.window, want.window)
        assert g.ranges == want.ranges
