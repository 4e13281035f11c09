"""Overlapping windows of whole lines: how a text too long for one check is checked piece by piece
(`code-search scan` per file or hunk, the language server's whole-document check).

A window never splits a line: each starts at the start of a line, so a match found in it maps to
file lines and columns by counting line breaks from there (what `membership.scan.locate` does),
and a window is the same lines whatever their length. A line longer than the window is a window
of its own; the query's own size limit (`QuerySettings.max_query_bytes`) still holds.
Only ``\\n`` ends a line, as everywhere a match's lines are counted (``str.splitlines`` also
breaks at form feeds and other separators, which put the lines of a later window off by one).
"""

from __future__ import annotations


def line_windows(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` offsets of windows of whole lines covering ``text``: as many lines as fit
    in ``size`` characters (at least one), each window after the first holding a line the one
    before did not and repeating at least ``overlap`` characters of it (whole lines, as many as
    fit), so a copy up to ``overlap`` long across a boundary is still seen whole by one window.
    A text of ``size`` characters or fewer is one window; an empty text none."""
    if not text:
        return []
    if len(text) <= size:
        return [(0, len(text))]
    # bounds[k] is where line k starts; the last entry is the end of the text.
    bounds = [0]
    nl = text.find("\n")
    while nl != -1 and nl + 1 < len(text):
        bounds.append(nl + 1)
        nl = text.find("\n", nl + 1)
    bounds.append(len(text))
    lines = len(bounds) - 1
    out: list[tuple[int, int]] = []
    i = j = 0  # the window is lines [i, j)
    while True:
        j = max(j + 1, i + 1)  # at least the first line the window before did not hold
        while j < lines and bounds[j + 1] - bounds[i] <= size:
            j += 1
        out.append((bounds[i], bounds[j]))
        if j >= lines:
            return out
        # The next window holds line j; it starts far enough back to repeat `overlap`
        # characters, as far as it still fits in `size` with line j.
        k = j
        while k > i + 1 and bounds[j] - bounds[k] < overlap and bounds[j + 1] - bounds[k - 1] <= size:
            k -= 1
        i = k
