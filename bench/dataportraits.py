"""A Data Portraits-style baseline, measured beside stacklens in the same run.

Whitespace-normalised text (as DP's `proc_code`), 50-character grams at stride 50 stored in a
set (a Bloom filter without false positives), every 50-character window of a query tested; a
query is a member when any window hits. It gives no document ids, so it attributes nothing.
"""

from __future__ import annotations

import re

WIDTH = 50
_CRLF = re.compile(r"(\r?\n)+")
_WS = re.compile(r"[^\S\n]+")
_LEAD = re.compile(r"\n\s+")


def proc_code(text: str) -> str:
    text = _CRLF.sub("\n", text)
    text = _WS.sub(" ", text)
    text = _LEAD.sub("\n", text)
    return text.strip()


class Portrait:
    def __init__(self) -> None:
        self.grams: set[str] = set()

    def add(self, text: str) -> None:
        norm = proc_code(text)
        for i in range(0, len(norm) - WIDTH + 1, WIDTH):
            self.grams.add(norm[i : i + WIDTH])

    def hits(self, text: str) -> int:
        norm = proc_code(text)
        grams = self.grams
        return sum(1 for i in range(len(norm) - WIDTH + 1) if norm[i : i + WIDTH] in grams)

    def bloom_bytes(self, bits_per_element: float = 9.59) -> int:
        """Size of an equivalent Bloom filter at 1 % false positives."""
        return int(len(self.grams) * bits_per_element / 8)
