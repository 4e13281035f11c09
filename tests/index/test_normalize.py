from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from index.normalize import PLACEHOLDER_ID, language_for, normalized_text, tokenize
from tests.conftest import CORPUS_FILES, STDLIB

SAMPLES = Path(__file__).parent / "samples"
# One file per language family, each with the shapes that lex differently when a fragment starts
# inside them: block and doc comments, template literals, raw strings, lifetimes, docstrings.
_SAMPLE_TEXTS = {p.name: p.read_text() for p in sorted(SAMPLES.iterdir())}
_FILES = {**_SAMPLE_TEXTS, **{rel: (STDLIB / rel).read_text() for rel in CORPUS_FILES}}


def test_whitespace_and_indentation_do_not_change_tokens() -> None:
    a = "def f(x):\n    if x:\n        return x + 1\n"
    b = "def f( x ):\n  if x:\n\n      return x+1   \n"
    assert np.array_equal(tokenize(a).concrete, tokenize(b).concrete)


def test_comments_are_content() -> None:
    assert normalized_text("x = 1  # set x\n") == "x = 1 # set x"
    assert (
        normalized_text("int x = 1; // set x\n/* block\n */ y++;")
        == "int x = 1 ; // set x / * block * / y ++ ;"
    )


def test_comments_are_recognised_line_by_line() -> None:
    text = "/**\n * Returns it.\n */\nint f(int a) { // why\n  return *p + a; # not\n}\nx = 1  # note\n"
    t = tokenize(text)
    comment = [text[a:b] for a, b, c in zip(t.start, t.end, t.comment, strict=True) if c]
    assert comment == ["/", "**", "*", "Returns", "it", ".", "*", "/", "//", "why", "#", "not", "#", "note"]
    # `*p` and `this.#x` are code, and so is a `#` that does not follow a space.
    assert not tokenize("*p = 1;\nthis.#x = 2;\n").comment.any()


def test_identifiers_are_abstracted_but_keywords_literals_and_comment_words_kept() -> None:
    t1 = tokenize("for item in items: total += item * 2  # add up")
    t2 = tokenize("for x in xs: acc += x * 2  # add up")
    t3 = tokenize("for x in xs: acc += x * 3  # add up")
    assert np.array_equal(t1.abstract, t2.abstract)
    assert not np.array_equal(t1.concrete, t2.concrete)
    assert not np.array_equal(t2.abstract, t3.abstract)
    words = tokenize("// add up\nvar total = 0;\n")
    assert (words.abstract[:3] != PLACEHOLDER_ID).all()  # the comment's words stay as written
    assert (words.abstract == PLACEHOLDER_ID).sum() == 1  # `total`


def test_keywords_of_every_language_are_kept() -> None:
    for code in (
        "fn main() { let mut v = Vec::new(); }",
        "func f() error { return nil }",
        "public static void m() {}",
    ):
        t = tokenize(code)
        kept = [code[a:b] for a, b, x in zip(t.start, t.end, t.abstract, strict=True) if x != PLACEHOLDER_ID]
        assert {
            "fn",
            "let",
            "mut",
            "Vec",
            "func",
            "error",
            "return",
            "nil",
            "public",
            "static",
            "void",
        } & set(kept)
        assert not {"main", "v", "f", "m"} & set(kept)


def test_offsets_and_lines_with_astral_characters() -> None:
    text = 's = "😀"\n# 🐍 comment\nname_é = s  # ok\n'
    t = tokenize(text)
    toks = [text[a:b] for a, b in zip(t.start, t.end, strict=True)]
    assert toks == ["s", "=", '"😀"', "#", "🐍", "comment", "name_é", "=", "s", "#", "ok"]
    assert list(t.line) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]


def test_no_token_spans_a_line() -> None:
    for name, text in _SAMPLE_TEXTS.items():
        t = tokenize(text)
        assert (t.line == t.end_line).all(), name


def test_language_names() -> None:
    assert language_for("a/b/c.py") == "python"
    assert language_for(None, "typescriptreact") == "typescript"
    assert language_for("x.unknownext") == "unknown"


def test_the_language_changes_nothing() -> None:
    for text in _SAMPLE_TEXTS.values():
        a, b = tokenize(text), tokenize(text, "python")
        assert np.array_equal(a.concrete, b.concrete) and np.array_equal(a.abstract, b.abstract)


def test_malformed_code_never_raises() -> None:
    for text in ['"unterminated', "'''", "/* open", "\x00\x01", "", "💥" * 10, "a" * 10000, "\ud800 x"]:
        t = tokenize(text)
        assert len(t.start) == len(t.concrete) == len(t.comment)


def _assert_tail(whole_text: str, offset: int, first_line: int) -> None:
    """The tokens of ``whole_text[offset:]`` from its line ``first_line`` (1-based, relative) on
    equal the tokens of the whole text at the same place."""
    whole, part = tokenize(whole_text), tokenize(whole_text[offset:])
    base = whole_text.count("\n", 0, offset)
    tail = whole.line > base + first_line - 1
    mine = part.line >= first_line
    for field in ("concrete", "abstract", "comment"):
        assert np.array_equal(getattr(whole, field)[tail], getattr(part, field)[mine]), field
    assert np.array_equal(whole.start[tail] - offset, part.start[mine])
    assert np.array_equal(whole.line[tail] - base, part.line[mine])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(_FILES)), st.floats(0, 1))
def test_a_fragment_tokenizes_like_the_tail_of_its_file(name: str, where: float) -> None:
    """A copied fragment starting at any line (inside a block comment, a docstring, a template
    literal, a raw string) yields the same tokens as the file it came from, in every language."""
    text = _FILES[name]
    lines = text.splitlines(keepends=True)
    cut = int(where * (len(lines) - 1))
    _assert_tail(text, sum(len(x) for x in lines[:cut]), 1)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(_FILES)), st.floats(0, 1))
def test_a_fragment_cut_mid_line_agrees_from_its_next_line(name: str, where: float) -> None:
    text = _FILES[name]
    _assert_tail(text, int(where * len(text)), 2)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_token_spans_cover_the_text_they_name(text: str) -> None:
    t = tokenize(text)
    assert np.all(t.start < t.end)
    assert np.all(t.start[1:] >= t.end[:-1])
    covered = "".join(text[a:b] for a, b in zip(t.start, t.end, strict=True))
    assert "".join(covered.split()) == "".join(text.split())  # nothing but whitespace is dropped
    for a, b in zip(t.start, t.end, strict=True):
        assert text[a:b].strip() == text[a:b]
