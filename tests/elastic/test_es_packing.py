"""The packed payload of an Elasticsearch postings chunk and its columns (no server needed)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from es_corpus import STDLIB
from hypothesis import given, settings
from hypothesis import strategies as st

from index.builder import prepare_document
from index.config import FingerprintParams
from index.elastic import packing, rows
from index.linetable import decode_lines
from index.sources import SourceFile
from stacklens.errors import IndexCorruptError


def test_columns_round_trip_in_the_fewest_bytes() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**32, 128, dtype=np.uint64)
    pos = np.arange(5000, 5000 + 128 * 7, 7)  # a span of ~900 tokens: 2 bytes each
    line = pos // 9  # ~100 lines: 1 byte each
    blob = packing.encode(-12345, [keys, pos, line])
    assert len(blob) == 13 + 3 * 5 + 128 * (4 + 2 + 1)
    refs, (k, p, li) = packing.decode([blob, blob[:]], 3)
    assert (refs == -12345).all() and len(refs) == 256
    assert (k[:128] == keys.astype(np.int64)).all() and (k[128:] == k[:128]).all()
    assert (p[:128] == pos).all() and (li[:128] == line).all()


def test_wide_and_empty_columns() -> None:
    wide = np.array([0, 2**32 - 1], dtype=np.uint64)
    refs, (k,) = packing.decode([packing.encode(7, [wide]), packing.encode(8, [wide[:0]])], 1)
    assert refs.tolist() == [7, 7] and k.tolist() == [0, 2**32 - 1]
    with pytest.raises(ValueError, match="32-bit"):
        packing.encode(7, [np.array([2**32], dtype=np.uint64)])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.integers(0, 40),
            st.lists(st.sampled_from([1 << 8, 1 << 16, 1 << 32]), min_size=3, max_size=3),
            st.integers(0, 2**31),
        ),
        max_size=12,
    )
)
def test_chunks_of_every_width_and_size_decode_to_what_was_encoded(
    chunks: list[tuple[int, int, list[int], int]],
) -> None:
    """Chunks mixing widths, sizes (empty ones too) and references decode in one call to
    their rows in order, each column within its chunk's range."""
    rng = np.random.default_rng(len(chunks))
    want: list[list[int]] = [[], [], []]
    blobs, want_refs = [], []
    for ref, n, spans, low in chunks:
        cols = [
            np.minimum(
                rng.integers(0, span, n, dtype=np.uint64) + np.uint64(low if span < 1 << 32 else 0), 2**32 - 1
            )
            for span in spans
        ]
        blobs.append(packing.encode(ref, cols))
        want_refs += [ref] * n
        for w, c in zip(want, cols, strict=True):
            w += c.astype(np.int64).tolist()
    refs, got = packing.decode(blobs, 3)
    assert refs.tolist() == want_refs
    assert [g.tolist() for g in got] == want


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([1 << 8, 1 << 16, 1 << 32])), max_size=10),
    st.integers(0, 40),
    st.booleans(),
)
def test_only_the_rows_of_the_wanted_keys_are_decoded(
    chunks: list[tuple[int, int]], n_wanted: int, same_low16: bool
) -> None:
    """With ``first_in``, the rows whose first column is wanted, in order, with all their
    columns, as an unfiltered decode gives them; keys sharing their low 16 bits with a wanted
    one (the filter's first cut) are not taken for it."""
    rng = np.random.default_rng(len(chunks) * 41 + n_wanted)
    blobs = []
    for i, (n, span) in enumerate(chunks):
        keys = rng.integers(0, 2**32, n, dtype=np.uint64)
        if same_low16:  # all keys alike in their low 16 bits
            keys = (keys & np.uint64(0xFFFF_0000)) | np.uint64(0x1234)
        other = rng.integers(0, span, n, dtype=np.uint64) + np.uint64(1000 if span < 1 << 32 else 0)
        blobs.append(packing.encode(i - 5, [keys, np.minimum(other, 2**32 - 1), keys >> np.uint64(20)]))
    refs, blob, cols = packing.decode_chunks(blobs, 3)
    assert (blob == refs + 5).all()  # blob i is file i - 5's
    pool = np.r_[cols[0], rng.integers(0, 2**32, 20)]
    wanted = np.sort(rng.choice(pool, min(n_wanted, len(pool)), replace=False)).astype(np.int64)
    keep = np.isin(cols[0], wanted)
    # From the chunks in base64, as Elasticsearch returns them (chunks of more than 128 rows
    # have their key column past the part decoded first).
    texts = [base64.b64encode(b).decode("ascii") for b in blobs]
    text_refs, text_blob, text_cols = packing.decode_texts(texts, 3, first_in=wanted)
    assert text_refs.tolist() == refs[keep].tolist() and text_blob.tolist() == blob[keep].tolist()
    assert [c.tolist() for c in text_cols] == [c[keep].tolist() for c in cols]


def test_a_truncated_chunk_asks_for_a_rebuild() -> None:
    blob = packing.encode(1, [np.arange(300), np.arange(3, 303)])
    for cut in (5, 20, len(blob) - 1):
        with pytest.raises(IndexCorruptError, match="rebuild"):
            packing.decode([blob, blob[:cut]], 2)
        texts = [base64.b64encode(b).decode("ascii") for b in (blob, blob[:cut])]
        with pytest.raises(IndexCorruptError, match="rebuild"):
            packing.decode_texts(texts, 2, np.arange(3))


def test_a_chunk_of_another_layout_asks_for_a_rebuild() -> None:
    blob = packing.encode(1, [np.arange(3), np.arange(3)])
    with pytest.raises(IndexCorruptError, match="rebuild"):
        packing.decode([blob], 3)


def test_posting_lines_follow_the_embedded_stores_rules() -> None:
    """Lines and spans computed at build time (vectorised) equal what the embedded store's
    line table resolves for the same postings, bridges and band windows included."""
    params = FingerprintParams()
    checked = bridges = 0
    for path in sorted((STDLIB / "json").glob("*.py")) + sorted((STDLIB / "email").glob("*.py"))[:8]:
        src = SourceFile(key=path.name, text=path.read_text(), path=path.name, lang="python")
        p = prepare_document((src, "sha", params))
        assert p is not None
        lines = decode_lines(p.lines)
        _, (_, pos, start, _, span) = rows.fingerprint_columns(p, params.kgram)
        for i, flag in enumerate(p.fp[2]):
            at = int(pos[i])
            end = lines.line(at) + lines.bridge_span(at) if flag else lines.end_line(at + params.kgram - 1)
            assert (start[i], start[i] + span[i]) == (lines.line(at), end)
            bridges += bool(flag)
        _, (_, first, last) = rows.band_columns(p, params.minhash_lines)
        for t, a, b in zip(p.mh[1], first, last, strict=True):
            assert (a, b) == (lines.line(int(t)), lines.window_end(int(t), params.minhash_lines))
        checked += len(pos) + len(first)
    assert checked > 5000 and bridges > 0, (checked, bridges)
