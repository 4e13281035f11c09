"""Whether to complete at the cursor, and whether one line or a block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Mode = Literal["none", "single", "multi"]

_OPENERS = ("{", "(", "[", ":", "=>", "->", " do", " then", "\\")
# What may follow the cursor on its line and still let the completion end the line.
_LINE_TAIL_OK = re.compile(r"^[\s)\]}\"'`;,:]*$")
_WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True)
class CursorLine:
    before: str  # the cursor's line up to the cursor
    after: str  # the rest of the line

    @property
    def indent(self) -> str:
        return self.before[: len(self.before) - len(self.before.lstrip(" \t"))]

    @property
    def opens_block(self) -> bool:
        stripped = self.before.rstrip()
        return stripped.endswith(_OPENERS)


def cursor_line(text: str, offset: int) -> CursorLine:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return CursorLine(text[start:offset], text[offset : len(text) if end < 0 else end])


def decide_mode(
    line: CursorLine, *, explicit: bool = False, setting: str = "auto", comment_mark: str = "#"
) -> Mode:
    """``none`` mid-word (unless explicit); ``single`` when code follows on the line, in a line
    comment, or mid-statement; ``multi`` on a blank line or after a block opener."""
    before, after = line.before, line.after
    mid_word = bool(before) and bool(after) and _WORD_CHAR.match(before[-1]) and _WORD_CHAR.match(after[0])
    if mid_word and not explicit:
        return "none"
    if setting == "never":
        return "single"
    if not _LINE_TAIL_OK.match(after):
        return "single"  # code after the cursor on this line: finish the line only
    if setting == "always":
        return "multi"
    if comment_mark in before or "//" in before:
        return "single"
    if not before.strip() or line.opens_block:
        return "multi"
    return "single"
