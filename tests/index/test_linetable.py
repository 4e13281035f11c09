"""Format 4 keeps lines out of the postings: the line table must give back, for every posting,
the start and end lines that format 3 stored in it (bridges and multi-line tokens included)."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from index.builder import build
from index.config import BuildLimits, FingerprintParams
from index.fingerprint import fingerprint, minhash_bands
from index.linetable import decode_lines, encode_lines
from index.normalize import tokenize
from index.protocol import BandHits, FingerprintHits, band_lines, hit_lines
from index.sources import DirectorySource
from index.store import EmbeddedIndex
from tests.conftest import CORPUS_FILES, STDLIB

SAMPLES = Path(__file__).parent / "samples"


def test_a_record_round_trips_long_lines_multi_line_tokens_and_flagged_postings() -> None:
    line = np.array([1, 1, 3] + [4] * 300 + [7, 9], dtype=np.int64)
    end_line = line.copy()
    end_line[2] = 5  # a token whose last character is on a later line
    lines = decode_lines(encode_lines(line, end_line, np.array([40, 3]), np.array([6, 2])))
    assert [lines.line(t) for t in range(len(line))] == line.tolist()
    assert [lines.end_line(t) for t in range(len(line))] == end_line.tolist()
    assert lines.bridge_span(3) == 2 and lines.bridge_span(40) == 6
    with pytest.raises(ValueError):
        lines.bridge_span(4)


def test_a_record_without_lists_and_a_damaged_one() -> None:
    # Most records list no overflow, multi-line token or flagged posting: decoded without them.
    line = np.array([1, 1, 2, 4, 4, 4], dtype=np.int64)
    lines = decode_lines(encode_lines(line, line, np.zeros(0, np.int64), np.zeros(0, np.int64)))
    assert lines.cum.tolist() == [2, 3, 3, 6] and lines.cum.dtype == np.int64
    assert [lines.line(t) for t in range(len(line))] == line.tolist()
    assert len(lines.multi_tok) == len(lines.bridge_pos) == len(lines.spans) == 0
    raw = zlib.decompress(encode_lines(line, line, np.array([2]), np.array([1])))
    for damaged in (raw[:-1], raw + b"\x01", raw[:10]):
        with pytest.raises(ValueError):
            decode_lines(zlib.compress(damaged))


def test_the_one_token_forms_agree_with_the_array_forms() -> None:
    """A query resolves lines with the scalar forms, the Elasticsearch build with the arrays."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        line = np.cumsum(rng.integers(0, 3, 200)) + 1
        end_line = line + (rng.random(200) < 0.1) * rng.integers(1, 4, 200)
        end_line = np.maximum.accumulate(end_line)  # non-decreasing, as a text's tokens are
        bridge = np.unique(rng.integers(0, 200, 12))
        span = rng.integers(0, 5, len(bridge))
        lines = decode_lines(encode_lines(line, end_line, bridge, span))
        t = np.arange(len(line) + 3)  # past the last token too
        assert [lines.line(int(x)) for x in t] == lines.lines_of(t).tolist()
        assert [lines.end_line(int(x)) for x in t] == lines.end_lines_of(t).tolist()
        pos = np.arange(len(line) - 13)
        flagged = np.isin(pos, bridge)
        expected = lines.kgram_end_lines(pos, flagged, 14).tolist()
        got = [lines.kgram_end_line(int(p), bool(f), 14) for p, f in zip(pos, flagged, strict=True)]
        assert got == expected
        assert [lines.bridge_span(int(b)) for b in bridge] == span.tolist()
        with pytest.raises(ValueError, match="no flagged posting"):
            lines.bridge_span(int(np.setdiff1d(np.arange(201), bridge)[0]))


@pytest.mark.parametrize("segment_bytes", [64_000_000, 20_000])
def test_every_posting_resolves_the_lines_format_3_stored(tmp_path: Path, segment_bytes: int) -> None:
    """In one segment, and in one merged from many (token numbers renumbered), after a file
    changed (its old document dropped by the merge)."""
    root = tmp_path / "corpus"
    root.mkdir()
    for sample in SAMPLES.iterdir():
        shutil.copy(sample, root / sample.name)
    for rel in CORPUS_FILES[:3]:
        shutil.copy(STDLIB / rel, root / rel.replace("/", "_"))
    limits = BuildLimits(segment_bytes=segment_bytes)
    build(tmp_path / "idx", [DirectorySource(root, limits)], limits=limits, progress=False)
    changed = root / "Ring.java"
    changed.write_text("// a new first line\n" + changed.read_text())
    build(tmp_path / "idx", [DirectorySource(root, limits)], limits=limits, progress=False)
    params = FingerprintParams()
    bridges = 0
    with EmbeddedIndex(tmp_path / "idx") as idx:
        (seg,) = idx.segments
        doc, pos = seg.doc_pos("fp", np.arange(len(seg.fp)))
        flag = seg.fp.field("flag", np.arange(len(seg.fp))).astype(np.int64)
        for d in range(seg.num_docs):
            text = (root / seg.doc(d)["path"]).read_text()
            fp = fingerprint(tokenize(text), params)
            # What format 3 stored: the first token's line and the k-gram's line span.
            want = sorted(
                zip(fp.pos.tolist(), fp.line.tolist(), (fp.line + (fp.meta >> 16)).tolist(), strict=True)
            )
            mine = np.flatnonzero(doc == d)
            n = len(mine)
            hits = FingerprintHits(
                qi=np.arange(n),
                doc=np.full(n, d, dtype=np.int64),
                pos=pos[mine],
                line=np.full(n, -1, dtype=np.int64),
                meta=flag[mine] << 16,
                df=np.ones(n, dtype=np.int64),
            )
            got = sorted((int(pos[i]), *hit_lines(idx, hits, j, j)) for j, i in enumerate(mine))
            assert got == want, seg.doc(d)["path"]
            bridges += int(flag[mine].sum())
    assert bridges > 10  # the samples' comments make bridges, whose k-grams end further down


def test_every_band_posting_resolves_the_lines_format_3_stored(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for rel in CORPUS_FILES:
        shutil.copy(STDLIB / rel, root / rel.replace("/", "_"))
    build(tmp_path / "idx", [DirectorySource(root, BuildLimits())], progress=False)
    params = FingerprintParams()
    with EmbeddedIndex(tmp_path / "idx") as idx:
        (seg,) = idx.segments
        doc, first = seg.doc_pos("mh", np.arange(len(seg.mh)))
        checked = 0
        for d in range(seg.num_docs):
            tokens = tokenize((root / seg.doc(d)["path"]).read_text())
            bands = minhash_bands(tokens, params, stride=params.minhash_lines)
            # What format 3 stored: the window's first line and the end line of its last token.
            want = {i: (int(tokens.line[i]), int(tokens.end_line[j - 1])) for i, j in bands.ranges}
            mine = np.flatnonzero(doc == d)
            hits = BandHits(
                qi=np.arange(len(mine)),
                doc=np.full(len(mine), d, dtype=np.int64),
                line=np.full(len(mine), -1, dtype=np.int64),
                end_line=first[mine],
            )
            for j, t in enumerate(first[mine].tolist()):
                sel = np.zeros(len(mine), dtype=bool)
                sel[j] = True
                assert band_lines(idx, hits, sel) == want[t]
                checked += 1
            if len(mine) > 1:  # several windows: the first one's start, the last one's end
                assert band_lines(idx, hits, np.ones(len(mine), dtype=bool)) == (
                    want[int(first[mine].min())][0],
                    want[int(first[mine].max())][1],
                )
    assert checked > 100
