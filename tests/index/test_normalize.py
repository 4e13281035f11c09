from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import normalize
from index.normalize import KEYWORDS, PLACEHOLDER_ID, language_for, normalized_text, token_id, tokenize
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


# A straightforward tokenizer, the one the vectorised `tokenize` replaced (the lexer spelled as
# one alternation in priority order, a Python loop for the comment rule, ids one token at a
# time): both must give the same arrays for every text.
_OPS = (
    r"\.\.\.|>>=|<<=|\*\*=|//=|===|!==|==|!=|<=|>=|->|=>|::|\+\+|--|&&|\|\||<<|>>|\*\*|//"
    r"|\+=|-=|\*=|/=|%=|&=|\|=|\^=|:=|[^\s\w]"
)
_STRING = r"[rRbBuUfFL]{0,2}(?:\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|`[^`\n]*`)"
_RUNS = "|".join(rf"(?<={re.escape(c)}){re.escape(c)}{{2,}}" for c in "-=*#/~+.<>!^%&|")
_REFERENCE_LEXER = re.compile(rf"\s*+(?:[^\W\d]\w*+|{_STRING}|\d[\w.]*|\.\d[\w.]*|{_RUNS}|{_OPS})")


def _reference_tokenize(text: str) -> dict[str, np.ndarray]:
    raw = _REFERENCE_LEXER.findall(text)
    toks = [r.lstrip() for r in raw]
    end = np.cumsum([len(r) for r in raw], dtype=np.int64)
    start = end - np.array([len(t) for t in toks], dtype=np.int64)
    newlines = np.array([i for i, c in enumerate(text) if c == "\n"], dtype=np.int64)
    line = np.searchsorted(newlines, start, side="right").astype(np.int64) + 1
    end_line = np.searchsorted(newlines, np.maximum(end - 1, start), side="right").astype(np.int64) + 1
    n = len(toks)
    comment = np.zeros(n, dtype=bool)
    opened = False
    for i, tok in enumerate(toks):
        first = i == 0 or line[i] != line[i - 1]
        nxt = toks[i + 1] if i + 1 < n and line[i + 1] == line[i] and start[i + 1] == end[i] else None
        opened = (opened and not first) or (
            tok == "//"
            or (tok == "#" and (first or raw[i][0].isspace()))
            or (tok == "/" and nxt in ("*", "**"))
            or (first and tok == "--" and nxt is None)
            or (first and tok in ("*", "**") and nxt in (None, "/"))
        )
        comment[i] = opened
    concrete = np.array([token_id(t) for t in toks], dtype=np.uint64)
    code_name = [t.isidentifier() and t not in KEYWORDS and not c for t, c in zip(toks, comment, strict=True)]
    abstract = np.where(np.array(code_name, dtype=bool), np.uint64(PLACEHOLDER_ID), concrete)
    return {
        "concrete": concrete,
        "abstract": abstract.astype(np.uint64),
        "start": start,
        "end": end,
        "line": line,
        "end_line": end_line,
        "comment": comment,
    }


_PIECES = [
    *"abrRxyé_ß0159 \t\n\r\x0b\x0c\x85\u2028\u3000\x00\\'\"`-=*#/~+.<>!^%&|:;,()[]{}@?$",
    *["//", "/*", "*/", "/**", " * ", "--", "#", "'''", '"""', "...", "->", "=>", "**=", "r'", 'b"'],
    *["===", "!==", "::", ":=", "0x1f", "1.5e3", ".5", "self", "return", "def", "int", "𝔘", "\ud800"],
]


def _assert_like_reference(text: str) -> None:
    got, want = tokenize(text), _reference_tokenize(text)
    for field, expected in want.items():
        actual = getattr(got, field)
        assert actual.dtype == expected.dtype and np.array_equal(actual, expected), field


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join))
def test_tokenize_equals_the_straightforward_tokenizer(text: str) -> None:
    _assert_like_reference(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_tokenize_equals_the_straightforward_tokenizer_on_any_text(text: str) -> None:
    _assert_like_reference(text)


def test_tokenize_equals_the_straightforward_tokenizer_on_real_files() -> None:
    for text in _FILES.values():
        _assert_like_reference(text)


# Lines the comment rule treats differently: openers at a line's start, after a space, touching
# the next token, alone at the end of a text; plus strings, tabs, CRLF and non-ASCII lines.
_LINES = [
    *["", " ", "\t", "}", "\t}", "  return 0;", "#include <x.h>", "# comment", "x = 1  # note"],
    *["#!x", "a#b", "// c", "x // c", "/* c */", "/** doc", " * body", " */", "*p = 1;", "*args", "**kw"],
    *["-- sql", "--x", "a -- b", "--", "*", "**", "/", "/ *", "x /*", "s = 'it''s' # q", '"a # b"'],
    *["é = 1 // ü", "𝔘 * x", "\u3000# wide space", "x\x85# nel", "a\r", "// c\r", " *\r", "=== ---"],
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_LINES), max_size=40),
    st.sampled_from(["\n", "\r\n", "\n\n"]),
    st.booleans(),
)
def test_tokenize_equals_the_straightforward_tokenizer_on_multiline_texts(
    lines: list[str], newline: str, trailing: bool
) -> None:
    # The comment rule and the abstract ids come from tables per lexer match (its whitespace
    # included) and the next match's touching kind: texts whose lines repeat, open and close
    # comments in every way, start or end with an opener, must tokenize as the reference does.
    _assert_like_reference(newline.join(lines) + (newline if trailing else ""))


def test_a_full_vocabulary_is_replaced_and_threads_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = list(_FILES.values())
    expected = [_reference_tokenize(t)["abstract"] for t in texts]
    monkeypatch.setattr(normalize, "_MAX_VOCABULARY", 500)  # replaced after almost every file
    monkeypatch.setattr(normalize, "_VOCABULARY", normalize._Vocabulary())
    for text, want in zip(texts, expected, strict=True):
        assert np.array_equal(tokenize(text).abstract, want)
    monkeypatch.setattr(normalize, "_MAX_VOCABULARY", 2_000_000)
    monkeypatch.setattr(normalize, "_VOCABULARY", normalize._Vocabulary())
    with ThreadPoolExecutor(8) as pool:  # new matches added by several threads at once
        got = list(pool.map(lambda t: tokenize(t).abstract, texts * 4))
    assert all(np.array_equal(g, w) for g, w in zip(got, expected * 4, strict=True))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_ascii_text_tokenizes_as_the_unicode_lexer_would(text: str) -> None:
    # ASCII text goes through a lexer compiled with ASCII classes (faster); \x1c-\x1f are
    # whitespace to `\s` and must stay so.
    assert normalize._ASCII_LEXER.findall(text) == normalize._LEXER.findall(text)
    _assert_like_reference(text)


def test_the_ascii_lexer_agrees_on_every_pair_of_ascii_characters() -> None:
    pairs = [chr(a) + chr(b) for a in range(128) for b in range(128)]
    text = "\n".join(pairs)
    assert normalize._ASCII_LEXER.findall(text) == normalize._LEXER.findall(text)
    for pair in pairs:
        assert normalize._ASCII_LEXER.findall(pair) == normalize._LEXER.findall(pair), repr(pair)
