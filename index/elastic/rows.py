"""The columns one file's postings take in the Elasticsearch store, from a prepared document.

The embedded index keeps lines out of its postings (a per-document line table, resolved for the
hits of reported matches only). The Elasticsearch store keeps them in every posting instead:
a lookup's hits then carry their lines (`index.protocol.hit_lines` reads them), so resolving a
match costs no request for the file's line table; packed (`packing`), a chunk's lines take a
byte or two a posting. They are computed here once, from the same line table and by its own
rules (`index.linetable.DocLines`), which the embedded store's ``hit_lines`` applies too, so
both stores report the same lines.
"""

from __future__ import annotations

import numpy as np

from ..builder import PreparedDocument
from ..linetable import decode_lines
from ..segment import CONC_BITS
from . import packing

CONCRETE_MASK = (1 << CONC_BITS) - 1  # the bits of the concrete hash kept, as the embedded store


def fingerprint_columns(p: PreparedDocument, kgram: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The keys and the payload columns (`common.FP_COLUMNS`): the key's low 32 bits, position,
    start line, concrete hash, line span of the k-gram."""
    keys, pos, flag, concrete = p.fp
    lines = decode_lines(p.lines)
    pos = pos.astype(np.int64)
    start = lines.lines_of(pos)
    span = lines.kgram_end_lines(pos, np.asarray(flag, dtype=bool), kgram) - start
    conc = np.asarray(concrete, dtype=np.uint64) & np.uint64(CONCRETE_MASK)
    return keys, [keys & packing.LOW32, pos, start, conc, span]


def band_columns(p: PreparedDocument, minhash_lines: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The keys and the payload columns (`common.MH_COLUMNS`): the key's low 32 bits, the
    window's first and last line (`DocLines.lines_of` its first token, `DocLines.window_ends_of`)."""
    keys, first = p.mh
    lines = decode_lines(p.lines)
    first = first.astype(np.int64)
    return keys, [keys & packing.LOW32, lines.lines_of(first), lines.window_ends_of(first, minhash_lines)]
