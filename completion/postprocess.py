"""Turning raw model output into a suggestion that fits between prefix and suffix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from completion.mode import CursorLine, Mode

_PARTIAL_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_CLOSE = {")": "(", "]": "[", "}": "{"}
_OPEN = {v: k for k, v in _CLOSE.items()}


@dataclass(frozen=True)
class PostContext:
    mode: Mode
    line: CursorLine
    suffix: str  # text after the cursor (LF)
    stops: tuple[str, ...]  # FIM/EOS tokens and stop strings: output ends at the first
    max_lines: int = 30


def cut_at_stops(text: str, stops: Iterable[str]) -> str:
    cut = len(text)
    for stop in stops:
        if stop:
            i = text.find(stop, 0, cut)
            if i >= 0:
                cut = i
    return text[:cut]


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _first_code_line(text: str) -> str:
    for ln in text.split("\n"):
        if ln.strip():
            return ln.strip()
    return ""


def drop_prefix_echo(text: str, ctx: PostContext) -> str:
    """The cursor is after a partial word and the model restarted that word (the prompt ended
    mid-token): keep only what is new."""
    before = ctx.line.before
    m = _PARTIAL_WORD.search(before)
    if m is None:
        return text
    partial = m.group(0)
    if len(partial) >= 2 and text.startswith(partial) and len(text) > len(partial):
        nxt = text[len(partial)]
        if nxt.isalnum() or nxt == "_":
            return text[len(partial) :]
    return text


def cut_suffix_repeat(text: str, ctx: PostContext) -> str:
    """End the completion where it starts repeating the code after the cursor."""
    after = ctx.line.after.strip()
    # Bare closers are left to balance_brackets, which knows whether they pair up.
    if any(c.isalnum() for c in after) and text.rstrip().endswith(after):
        text = text.rstrip()[: -len(after)]
    next_code = _first_code_line(ctx.suffix[len(ctx.line.after) :])
    if len(next_code) >= 3 or (next_code and next_code in "})]"):
        lines = text.split("\n")
        for i in range(1, len(lines)):
            if lines[i].strip() == next_code:
                return "\n".join(lines[:i]).rstrip()
    return text


def trim_to_block(text: str, ctx: PostContext) -> str:
    """A multi-line completion stays inside the block the cursor is in (by indentation)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    base = _indent_width(ctx.line.before) if ctx.line.before.strip() else len(ctx.line.before)
    opener = ctx.line.opens_block
    keep = [lines[0]]
    for ln in lines[1:]:
        if not ln.strip():
            keep.append(ln)
            continue
        ind = _indent_width(ln)
        if ind > base or (ind == base and not opener):
            keep.append(ln)
            continue
        if opener and ind == base and ln.strip()[0] in _CLOSE:
            keep.append(ln)  # the closer of the block just opened
        break
    while keep and not keep[-1].strip() and len(keep) > 1:
        keep.pop()
    return "\n".join(keep[: ctx.max_lines])


def balance_brackets(text: str, ctx: PostContext) -> str:
    """Drop a closing bracket that closes something before the cursor when the suffix already
    closes it on the same line."""
    stack: list[str] = []
    quote = ""
    after = ctx.line.after.lstrip()
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and (i == 0 or text[i - 1] != "\\"):
                quote = ""
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if stack and stack[-1] == _CLOSE[ch]:
                stack.pop()
            elif after.startswith(ch) and "\n" not in text[i:]:
                return text[:i]
    return text


def postprocess(raw: str, ctx: PostContext) -> str:
    text = cut_at_stops(raw, ctx.stops)
    if ctx.mode == "single":
        if not ctx.line.before.strip() and text.startswith("\n"):
            text = text.lstrip("\n")
        text = text.split("\n", 1)[0]
    text = drop_prefix_echo(text, ctx)
    text = cut_suffix_repeat(text, ctx)
    if ctx.mode == "multi":
        text = trim_to_block(text, ctx)
    text = balance_brackets(text, ctx)
    return text.rstrip() if "\n" in text else text.rstrip("\n")


def finalize(candidates: Sequence[str], ctx: PostContext) -> list[str]:
    """Post-process every candidate, dropping empty ones and duplicates (order kept)."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in candidates:
        text = postprocess(raw, ctx)
        if not text.strip() or text in seen:
            continue
        seen.add(text)
        out.append(text)
    return out
