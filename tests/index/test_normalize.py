from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.normalize import guess_language, language_for, normalized_text, tokenize
from tests.conftest import CORPUS_FILES, STDLIB


def test_whitespace_and_indentation_do_not_change_tokens() -> None:
    a = "def f(x):\n    if x:\n        return x + 1\n"
    b = "def f( x ):\n  if x:\n\n      return x+1   \n"
    assert np.array_equal(tokenize(a, "python").concrete, tokenize(b, "python").concrete)


def test_comments_are_dropped_per_language() -> None:
    assert normalized_text("x = 1  # set x\n", "python") == "x = 1"
    assert normalized_text("int x = 1; // set x\n/* block\n */ y++;", "c") == "int x = 1 ; y ++ ;"
    # `//` is floor division in Python, a comment in C.
    assert normalized_text("a // b", "python") == "a // b"
    assert normalized_text("a // b", "c") == "a"


def test_identifiers_are_abstracted_but_keywords_and_literals_kept() -> None:
    t1 = tokenize("for item in items: total += item * 2", "python")
    t2 = tokenize("for x in xs: acc += x * 2", "python")
    t3 = tokenize("for x in xs: acc += x * 3", "python")
    assert np.array_equal(t1.abstract, t2.abstract)
    assert not np.array_equal(t1.concrete, t2.concrete)
    assert not np.array_equal(t2.abstract, t3.abstract)


def test_offsets_and_lines_with_astral_characters() -> None:
    text = 's = "😀"\n# 🐍 comment\nname_é = s  # ok\n'
    t = tokenize(text, "python")
    toks = [text[a:b] for a, b in zip(t.start, t.end, strict=False)]
    assert toks == ["s", "=", '"😀"', "name_é", "=", "s"]
    assert list(t.line) == [1, 1, 1, 3, 3, 3]


def test_language_detection() -> None:
    assert language_for("a/b/c.py") == "python"
    assert language_for(None, "typescriptreact") == "typescript"
    assert language_for("x.unknownext") == "unknown"
    assert guess_language("import os\n\ndef f():\n    pass\n") == "python"


def test_malformed_code_never_raises() -> None:
    for text in ['"unterminated', "'''", "/* open", "\x00\x01", "", "💥" * 10, "a" * 10000]:
        t = tokenize(text, "unknown")
        assert len(t.start) == len(t.concrete)


_FILES = [(STDLIB / rel).read_text() for rel in CORPUS_FILES]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(_FILES) - 1), st.floats(0, 1))
def test_a_fragment_tokenizes_like_the_tail_of_its_file(which: int, where: float) -> None:
    """A copied fragment starting at any line (even inside a docstring) yields the same tokens
    as the file it came from: the property every match relies on."""
    text = _FILES[which]
    lines = text.splitlines(keepends=True)
    cut = int(where * (len(lines) - 1))
    offset = sum(len(x) for x in lines[:cut])
    whole = tokenize(text, "python")
    part = tokenize(text[offset:], "python")
    tail = whole.start >= offset
    assert np.array_equal(whole.concrete[tail], part.concrete)
    assert np.array_equal(whole.start[tail] - offset, part.start)
    assert np.array_equal(whole.line[tail] - cut, part.line)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_token_spans_cover_the_text_they_name(text: str) -> None:
    t = tokenize(text, "python")
    assert np.all(t.start < t.end)
    assert np.all(t.start[1:] >= t.end[:-1])
    for a, b in zip(t.start, t.end, strict=False):
        assert text[a:b].strip() == text[a:b]
