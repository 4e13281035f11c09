"""The one splitter of long texts into overlapping windows of whole lines (membership/windows.py),
which `code-search scan` and the language server's whole-document check both use."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from membership.windows import line_windows

_LINES = st.lists(
    st.text(st.sampled_from(list("ab x\x0c\r\u2028é")), max_size=60).map(lambda s: s + "\n"),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(lines=_LINES, tail=st.text(st.sampled_from(list("ab ")), max_size=30), size=st.integers(20, 400))
def test_windows_are_whole_lines_that_cover_and_overlap(lines: list[str], tail: str, size: int) -> None:
    text = "".join(lines) + tail
    overlap = size // 4
    windows = line_windows(text, size, overlap)
    if not text:
        assert windows == []
        return
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    for start, end in windows:
        assert start == 0 or text[start - 1] == "\n"  # starts on a line: never splits one
        assert end == len(text) or text[end - 1] == "\n"
        # At most `size`, unless the window is one line longer than that.
        assert end - start <= size or text.count("\n", start, end - 1) == 0
    for (a0, a1), (b0, b1) in itertools.pairwise(windows):
        assert a0 < b0 <= a1 < b1  # moves on, with a line of its own
        # It repeats `overlap` or more, unless starting a line earlier would start where the
        # window before did, or not fit in `size` with the first new line.
        earlier = text.rfind("\n", 0, b0 - 1) + 1
        new_line_end = text.find("\n", a1) + 1 or len(text)
        assert a1 - b0 >= overlap or earlier <= a0 or new_line_end - earlier > size


def test_only_a_line_feed_ends_a_line() -> None:
    """Form feeds (common in Python sources), lone CRs and U+2028 are inside a line, as everywhere
    a match's lines are counted."""
    text = "".join(f"x{i} = {i}\n\x0c\n" if i % 3 == 0 else f"x{i}\r= {i}\u2028\n" for i in range(200))
    for start, end in line_windows(text, 300, 60):
        assert start == 0 or text[start - 1] == "\n"
        assert text[end - 1] == "\n"


def test_short_texts_and_long_lines() -> None:
    assert line_windows("", 100, 10) == []
    assert line_windows("a\nb", 100, 10) == [(0, 3)]
    text = "short\n" + "x" * 500 + "\nend\n"
    assert line_windows(text, 100, 10) == [(0, 6), (6, 507), (507, len(text))]
