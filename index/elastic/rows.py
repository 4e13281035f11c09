"""The columns one file's postings take in the Elasticsearch store, from a prepared document.

The embedded index keeps lines out of its postings (a per-document line table, resolved for the
hits of reported matches only). The Elasticsearch store keeps them in every posting instead:
a lookup's hits then carry their lines (`index.protocol.hit_lines` reads them), so resolving a
match costs no request for the file's line table; packed (`packing`), a chunk's lines take a
byte or two a posting. They are computed here once, from the same line table, by the rules the
embedded store's ``hit_lines`` applies, so both stores report the same lines.
"""

from __future__ import annotations

import numpy as np

from ..builder import PreparedDocument
from ..linetable import DocLines, decode_lines
from ..segment import CONC_BITS
from . import packing

CONCRETE_MASK = (1 << CONC_BITS) - 1  # the bits of the concrete hash kept, as the embedded store


def _line(lines: DocLines, t: np.ndarray) -> np.ndarray:
    """1-based line of each token ``t``'s first character (`DocLines.line`)."""
    return np.searchsorted(lines.cum, t, side="right").astype(np.int64) + 1


def _end_line(lines: DocLines, t: np.ndarray) -> np.ndarray:
    """Line of each token ``t``'s last character (`DocLines.end_line`)."""
    line = _line(lines, t)
    if len(lines.multi_tok) == 0:
        return line
    i = np.minimum(np.searchsorted(lines.multi_tok, t), len(lines.multi_tok) - 1)
    return np.where(lines.multi_tok[i] == t, lines.multi_end[i], line)


def fingerprint_columns(p: PreparedDocument, kgram: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The keys and the payload columns (`common.FP_COLUMNS`): the key's low 32 bits, position,
    start line, concrete hash, line span of the k-gram."""
    keys, pos, flag, concrete = p.fp
    lines = decode_lines(p.lines)
    pos = pos.astype(np.int64)
    start = _line(lines, pos)
    span = _end_line(lines, pos + kgram - 1) - start
    flagged = np.asarray(flag, dtype=bool)
    if flagged.any():  # bridges across comments: their span is listed by position
        span[flagged] = lines.spans[np.searchsorted(lines.bridge_pos, pos[flagged])]
    conc = np.asarray(concrete, dtype=np.uint64) & np.uint64(CONCRETE_MASK)
    return keys, [keys & packing.LOW32, pos, start, conc, span]


def band_columns(p: PreparedDocument, minhash_lines: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The keys and the payload columns (`common.MH_COLUMNS`): the key's low 32 bits, the
    window's first and last line (`DocLines.line` of its first token, `DocLines.window_end`)."""
    keys, first = p.mh
    lines = decode_lines(p.lines)
    first = first.astype(np.int64)
    start = _line(lines, first)
    filled = np.flatnonzero(np.diff(lines.cum, prepend=0)) + 1  # lines with tokens
    last = filled[np.minimum(np.searchsorted(filled, start) + minhash_lines - 1, len(filled) - 1)]
    return keys, [keys & packing.LOW32, start, _end_line(lines, lines.cum[last - 1] - 1)]
