"""A segment's line table: per document, the source line of every token, compressed, from which
a reported match's source lines are resolved (format 4).

Format 3 stored a line (15 bits at 1 GB) and a line span (8 bits) in every posting, a fifth of
the table, though only the few hits at the ends of a reported match are ever turned into lines.
Here each document keeps how many tokens each of its lines holds (one byte a line; zlib brings
a line to 3-4 bits: tokens per line repeat), tokens whose last character lies on a later line,
and the end line of the postings whose k-gram does not end at token ``pos + kgram - 1``
(bridges across comments, `index/fingerprint.py`): such postings carry a flag bit, and their
line span is listed here by position.

A document's record is one zlib blob of uint32 words: ``n_lines, n_over, n_multi, n_bridge``,
then the per-line counts (bytes, 255 = see the overflow list), the overflows (line, count),
the multi-line tokens (token, end line) and the flagged postings (position gaps, then spans).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stacklens.errors import IndexCorruptError

LINES_FILE = "lines.z"
LINES_OFFSETS_FILE = "lines_off.npy"
_CACHED = 256  # decoded documents kept: a query reports a few matches, a batch a few hundred


def encode_lines(
    line: np.ndarray, end_line: np.ndarray, bridge_pos: np.ndarray, bridge_span: np.ndarray
) -> bytes:
    """The record of one document: its tokens' first and last lines (1-based, non-decreasing)
    and the line span of each flagged posting (by token position, unique)."""
    line = np.asarray(line, dtype=np.int64)
    n_lines = int(line[-1]) if len(line) else 0
    counts = np.bincount(line - 1, minlength=n_lines) if len(line) else np.zeros(0, np.int64)
    over = np.flatnonzero(counts >= 255)
    end_line = np.asarray(end_line)
    multi = np.flatnonzero(end_line != line)
    # Empty lists are left out of the concatenation (no np.diff, no column_stack): most documents
    # have no overflow, no multi-line token and a few bridges, and a build encodes one record a
    # file (fingerprint_lines of a 1 KB file 60 -> 31 us).
    parts = [np.array([n_lines, len(over), len(multi), len(bridge_pos)], dtype=np.uint32)]
    if len(over):
        parts.append(_pairs(over, counts[over]))
    if len(multi):
        parts.append(_pairs(multi, end_line[multi]))
    if len(bridge_pos):
        order = np.argsort(bridge_pos, kind="stable")
        at = np.asarray(bridge_pos)[order].astype(np.int64)
        at[1:] -= at[:-1].copy()  # positions as gaps: small numbers, which zlib codes in a few bits
        parts += [at.astype(np.uint32), np.asarray(bridge_span)[order].astype(np.uint32)]
    words = np.concatenate(parts) if len(parts) > 1 else parts[0]
    body = np.minimum(counts, 255).astype(np.uint8).tobytes()
    return zlib.compress(words.astype("<u4", copy=False).tobytes() + body, 9)


def _pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[0], b[0], a[1], b[1], ...`` as uint32."""
    out = np.empty(2 * len(a), dtype=np.uint32)
    out[0::2], out[1::2] = a.astype(np.uint32), b.astype(np.uint32)
    return out


@dataclass(frozen=True)
class DocLines:
    """The decoded line table of one document."""

    cum: np.ndarray  # int64 tokens on lines 1..i+1
    multi_tok: np.ndarray
    multi_end: np.ndarray
    bridge_pos: np.ndarray
    spans: np.ndarray  # line span of each flagged posting

    # Each rule is written once, over arrays of tokens (the Elasticsearch build resolves every
    # posting's lines with them, `index.elastic.rows`); the one-token forms below serve a query.

    def lines_of(self, t: np.ndarray) -> np.ndarray:
        """1-based line of each token ``t``'s first character."""
        line: np.ndarray = np.searchsorted(self.cum, t, side="right").astype(np.int64) + 1
        return line

    def end_lines_of(self, t: np.ndarray) -> np.ndarray:
        """Line of each token ``t``'s last character."""
        line = self.lines_of(t)
        if len(self.multi_tok) == 0:
            return line
        i = np.minimum(np.searchsorted(self.multi_tok, t), len(self.multi_tok) - 1)
        end: np.ndarray = np.where(self.multi_tok[i] == t, self.multi_end[i], line)
        return end

    def bridge_spans(self, pos: np.ndarray) -> np.ndarray:
        """Line span of the flagged postings at tokens ``pos``."""
        i = np.searchsorted(self.bridge_pos, pos)
        listed = i < len(self.bridge_pos)
        listed[listed] = self.bridge_pos[i[listed]] == np.asarray(pos)[listed]
        if not listed.all():
            raise ValueError(f"no flagged posting at token {int(np.asarray(pos)[~listed][0])}")
        spans: np.ndarray = self.spans[i]
        return spans

    def kgram_end_lines(self, pos: np.ndarray, flagged: np.ndarray, kgram: int) -> np.ndarray:
        """Line where the k-gram of each posting at token ``pos`` ends: that of its last token
        ``pos + kgram - 1``, or for a flagged posting (a bridge) its start line and listed span."""
        pos = np.asarray(pos, dtype=np.int64)
        end = self.end_lines_of(pos + kgram - 1)
        if flagged.any():
            end[flagged] = self.lines_of(pos[flagged]) + self.bridge_spans(pos[flagged])
        return end

    def window_ends_of(self, t: np.ndarray, n: int) -> np.ndarray:
        """Last line of each MinHash window that starts at token ``t`` and holds ``n`` lines
        with tokens (`index.fingerprint.minhash_bands`): where its last token ends."""
        filled = np.flatnonzero(np.diff(self.cum, prepend=0)) + 1  # lines with tokens
        at = np.minimum(np.searchsorted(filled, self.lines_of(t)) + n - 1, len(filled) - 1)
        return self.end_lines_of(self.cum[filled[at] - 1] - 1)

    # The one-token forms serve a query's reported matches (a few each): one scalar search
    # each instead of wrapping the array forms, about 3 -> 1 us for ``line`` and 7 -> 1 us for
    # ``kgram_end_line`` (cached lines, timeit on this shared machine).

    def line(self, t: int) -> int:
        """1-based line of token ``t``'s first character."""
        return int(self.cum.searchsorted(t, side="right")) + 1

    def end_line(self, t: int) -> int:
        line = self.line(t)
        if len(self.multi_tok) == 0:
            return line
        i = min(int(self.multi_tok.searchsorted(t)), len(self.multi_tok) - 1)
        return int(self.multi_end[i]) if int(self.multi_tok[i]) == t else line

    def kgram_end_line(self, pos: int, flagged: bool, kgram: int) -> int:
        if flagged:
            return self.line(pos) + self.bridge_span(pos)
        return self.end_line(pos + kgram - 1)

    def window_end(self, t: int, n: int) -> int:
        return int(self.window_ends_of(np.asarray([t]), n)[0])

    def bridge_span(self, pos: int) -> int:
        """Line span of the flagged posting at token ``pos``."""
        i = int(self.bridge_pos.searchsorted(pos))
        if i >= len(self.bridge_pos) or int(self.bridge_pos[i]) != pos:
            raise ValueError(f"no flagged posting at token {pos}")
        return int(self.spans[i])


_NONE = np.zeros(0, dtype=np.int64)  # shared by the lists a record leaves empty (never written to)
_HEADER = struct.Struct("<4I")


def decode_lines(blob: bytes) -> DocLines:
    # Numpy calls only for the lists a record has: most have no overflow and no multi-line
    # token (a query decodes one record a match it reports: 30 -> 14 us here).
    raw = zlib.decompress(blob)
    if len(raw) < _HEADER.size:
        raise ValueError(f"a line table record of {len(raw)} bytes")
    n_lines, n_over, n_multi, n_bridge = _HEADER.unpack_from(raw)
    n_words = 4 + 2 * n_over + 2 * n_multi + 2 * n_bridge
    if len(raw) != 4 * n_words + n_lines:
        raise ValueError(f"{len(raw) - 4 * n_words} line counts, {n_lines} expected")
    counts = np.frombuffer(raw, dtype=np.uint8, offset=4 * n_words).astype(np.int64)
    if n_words == 4:
        return DocLines(counts.cumsum(), _NONE, _NONE, _NONE, _NONE)
    words = np.frombuffer(raw, dtype="<u4", count=n_words - 4, offset=16).astype(np.int64)
    if n_over:
        over = words[: 2 * n_over]
        counts[over[0::2]] = over[1::2]
    multi = words[2 * n_over : 2 * (n_over + n_multi)]
    bridges = words[2 * (n_over + n_multi) :]
    return DocLines(
        cum=counts.cumsum(),
        multi_tok=multi[0::2].copy() if n_multi else _NONE,
        multi_end=multi[1::2].copy() if n_multi else _NONE,
        bridge_pos=np.cumsum(bridges[:n_bridge]) if n_bridge else _NONE,
        spans=bridges[n_bridge:].copy() if n_bridge else _NONE,
    )


def write_line_table(directory: Path, blobs: Iterable[bytes]) -> int:
    offsets = [0]
    with (directory / LINES_FILE).open("wb") as f:
        for blob in blobs:
            f.write(blob)
            offsets.append(offsets[-1] + len(blob))
    np.save(directory / LINES_OFFSETS_FILE, np.asarray(offsets, dtype=np.uint64))
    return len(offsets) - 1


class LineTable:
    """Read side; ``lines`` may be called from several threads."""

    def __init__(self, directory: Path, n: int) -> None:
        self.path = directory / LINES_FILE
        try:
            self.offsets = np.asarray(np.load(directory / LINES_OFFSETS_FILE, mmap_mode="r"))
        except (ValueError, OSError) as exc:
            raise IndexCorruptError(
                f"cannot read {directory / LINES_OFFSETS_FILE}: {exc}; rebuild the index"
            ) from exc
        if len(self.offsets) != n + 1:
            raise IndexCorruptError(f"the line table of {directory} is inconsistent; rebuild the index")
        self._file = self.path.open("rb")
        self._cache: OrderedDict[int, DocLines] = OrderedDict()
        self._lock = threading.Lock()

    def blob(self, i: int) -> bytes:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return os.pread(self._file.fileno(), end - start, start)

    def lines(self, i: int) -> DocLines:
        with self._lock:
            got = self._cache.get(i)
            if got is not None:
                self._cache.move_to_end(i)
                return got
        try:
            got = decode_lines(self.blob(i))
        except (ValueError, zlib.error) as exc:
            raise IndexCorruptError(
                f"the line table {self.path} is damaged ({exc}); rebuild the index"
            ) from exc
        with self._lock:
            self._cache[i] = got
            if len(self._cache) > _CACHED:
                self._cache.popitem(last=False)
        return got

    def close(self) -> None:
        self._file.close()
