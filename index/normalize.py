"""Normalising code into token streams that whitespace, renaming and comment removal cannot hide.

A file becomes two parallel token streams with the same positions:
- *concrete*: every token as written, comments and doc comments included (they are content: a
  model that memorised a file reproduces its comments too), whitespace dropped, so reindented
  copies still match exactly;
- *abstract*: code identifiers replaced by one placeholder (keywords, literals, operators and the
  words of comments kept), so a copy whose names were all changed still matches.
Each token keeps its character span and 1-based line in the original text, so a match found on
tokens can be reported in lines and characters of the text the user sees.

One lexer serves every language, and no token spans a line: each line is lexed on its own, so a
fragment that starts anywhere (inside a block comment, a docstring, a template literal, a raw
string) tokenizes exactly like the tail of the file it came from, and a query needs no language.
Comments are recognised per line too (a line-local rule, so fragment and file agree): text from
`//`, `#` (at a line start or after a space), `/*` or a leading `--` to the end of the line, and
lines that start with `*` (the body of a `/** ... */` block).
"""

from __future__ import annotations

import builtins
import hashlib
import itertools
import keyword
import operator
import re
import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stacklens.languages import EXTENSIONS

# Strings never span lines (see the module docstring): quotes pair up within one line, and a
# quote with no partner on its line is an operator.
_STRING = r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|`[^`\n]*`"
# Operators of more than one character, in the order they are tried (a longer one before its
# prefix); any other character that is neither space nor word is a token of its own.
_OPERATORS: tuple[str, ...] = ("...", ">>=", "<<=", "**=", "//=", "===", "!==", "==", "!=", "<=", ">=")
_OPERATORS += ("->", "=>", "::", "++", "--", "&&", "||", "<<", ">>", "**", "//", "+=", "-=", "*=", "/=")
_OPERATORS += ("%=", "&=", "|=", "^=", ":=")
# A run of one punctuation character (`//------`, `/*****`, `=====`) is decoration: the rest of
# the run after its first one or two characters is one token, or a separator line is forty
# identical k-grams that every file of a project shares (a query's p99 went 13 -> 5 ms).
_RUN_CHARS = "-=*#/~+.<>!^%&|"


def _punctuation(c: str) -> str:
    """The alternatives for a token that starts with ``c``, as one branch that opens with the
    literal ``c``: the regex engine skips such a branch on its first character, where trying a
    lookbehind per run character and every operator in turn cost a third of the lexer's time."""
    e = re.escape(c)
    alts = [r"\d[\w.]*"] if c == "." else []  # .5
    if c in _RUN_CHARS:
        alts.append(rf"(?<={e}{e}){e}+")  # the third and later characters of a run
    alts += [re.escape(op[1:]) for op in _OPERATORS if op[0] == c]
    return e + "(?:" + "|".join([*alts, ""]) + ")"


_FIRSTS = "".join(dict.fromkeys(_RUN_CHARS + "".join(op[0] for op in _OPERATORS)))


def _lexer(space: str, flags: int = 0) -> re.Pattern[str]:
    """The lexer, with ``space`` the members of a class of whitespace.

    Every match is one token with the whitespace before it, consumed possessively: failing
    every alternative at each indentation space costs more than the whole tokenisation, and it
    lets `findall` (no Python code per token, no groups: a tuple per token costs 2x) recover
    every offset by summing lengths. No alternative can cross a newline. Identifiers come first
    (`r"x"` is `r` then a string) and then the punctuation that is always one character
    (brackets, `;`, `,`), the commonest tokens; the last `[^\\s\\w]` is a quote without a partner.
    """
    single = f"[^{space}\\w\"'`{re.escape(_FIRSTS)}]"
    punctuation = "|".join(map(_punctuation, _FIRSTS))
    return re.compile(
        rf"[{space}]*+(?:[^\W\d]\w*+|{single}|{punctuation}|{_STRING}|\d[\w.]*|[^{space}\w])", flags
    )


_LEXER = _lexer(r"\s")
# The same lexer for ASCII text (almost all code), with ASCII classes: sre tests their members
# from a table where it looks Unicode ones up in the character database (findall 23 % faster on
# 29 MB of ASCII files, the same matches). `\s` is spelled as its ASCII members, \x1c-\x1f too.
_ASCII_LEXER = _lexer(r"\t-\r\x1c-\x20", re.ASCII)


def _lexer_for(text: str) -> re.Pattern[str]:
    return _ASCII_LEXER if text.isascii() else _LEXER


# VS Code language ids and The Stack's `lang` values that differ from our names.
_LANG_ALIASES = {
    "py": "python",
    "c++": "cpp",
    "c#": "csharp",
    "js": "javascript",
    "ts": "typescript",
    "typescriptreact": "typescript",
    "javascriptreact": "javascript",
    "shellscript": "shell",
    "bash": "shell",
    "golang": "go",
    "rs": "rust",
    "makefile": "make",
}
# Our names for the extensions of the one table (stacklens.languages).
LANG_OF_EXT = {ext: _LANG_ALIASES.get(lang, lang) for ext, lang in EXTENSIONS.items()}
_LANGUAGES = frozenset(LANG_OF_EXT.values())

# Keywords, primitive types and builtins of the languages a code model is trained on: kept as
# written in the abstract stream, since renaming a copy never changes them. One set for every
# language, so that tokens never depend on knowing the language.
_WORDS = """
    abstract alignas alignof and as asm assert async auto await become bool boolean box break byte
    case catch char char16_t char32_t chan class const const_cast constexpr continue crate debugger
    decltype default defer delete do double dyn dynamic_cast elif else enum explicit export extends
    extern false final finally float fn for foreach friend from func function go goto if impl
    implements import in inline instanceof int interface internal is lambda let long loop macro
    match mod module move mut namespace native new nil noexcept not null nullptr object operator
    or override package private protected pub public range readonly ref register reinterpret_cast
    return sealed select self Self short signed sizeof static static_cast struct super switch
    synchronized template then this throw throws trait transient true try type typedef typeid
    typename typeof union unsafe unsigned use using var virtual void volatile where while with
    yield local end elseif repeat until fun val when companion suspend data sealed init deinit
    guard fallthrough defer lazy weak unowned mutating protocol extension where
    usize isize u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 str string number any unknown
    never symbol bigint undefined int8 int16 int32 int64 uint uint8 uint16 uint32 uint64 uintptr
    float32 float64 complex64 complex128 rune error iota make cap len append copy panic recover
    wchar_t size_t ssize_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
    NULL TRUE FALSE console println printf sprintf fprintf malloc calloc realloc free memcpy
    memset strlen std Ok Err Some None Option Result Vec String Box
"""
KEYWORDS = (
    frozenset(keyword.kwlist)
    | frozenset(keyword.softkwlist)
    | frozenset(dir(builtins))
    | {"self", "cls"}
    | frozenset(_WORDS.split())
)


PLACEHOLDER = "\x00I"


def language_for(path: str | None = None, hint: str | None = None) -> str:
    """Our language name for an editor/Stack language id or a file name; "unknown" otherwise.
    Metadata only: tokenisation does not depend on it."""
    if hint:
        name = _LANG_ALIASES.get(hint.lower(), hint.lower())
        if name in _LANGUAGES:
            return name
    if path:
        dot = path.rfind(".")
        if dot >= 0:
            return LANG_OF_EXT.get(path[dot:].lower(), "unknown")
    return "unknown"


def token_id(tok: str) -> int:
    """A stable 64-bit id for a token (same in every process, unlike ``hash``)."""
    return int.from_bytes(
        hashlib.blake2b(tok.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


@dataclass(frozen=True)
class Tokens:
    """Parallel arrays, one entry per normalised token."""

    concrete: np.ndarray  # uint64 token ids as written
    abstract: np.ndarray  # uint64 token ids with code identifiers abstracted
    start: np.ndarray  # int64 char offset in the original text
    end: np.ndarray  # int64 char offset (exclusive)
    line: np.ndarray  # int64 1-based line of the token's first character
    end_line: np.ndarray  # int64 1-based line of the token's last character
    comment: np.ndarray  # bool: the token is part of a comment (line-local rule)

    def __len__(self) -> int:
        return len(self.concrete)

    @cached_property
    def char_prefix(self) -> np.ndarray:
        """``char_prefix[i]``: normalised characters of tokens ``[0, i)`` (length ``n + 1``)."""
        prefix: np.ndarray = np.concatenate(([0], np.cumsum(self.end - self.start)))
        return prefix

    def norm_chars(self, i: int, j: int) -> int:
        """Normalised characters (token text without whitespace) of tokens ``[i, j)``."""
        return int(self.char_prefix[j] - self.char_prefix[i])

    def take(self, idx: np.ndarray) -> Tokens:
        """The tokens at positions ``idx`` (e.g. the code without its comments)."""
        return Tokens(
            concrete=self.concrete[idx],
            abstract=self.abstract[idx],
            start=self.start[idx],
            end=self.end[idx],
            line=self.line[idx],
            end_line=self.end_line[idx],
            comment=self.comment[idx],
        )


PLACEHOLDER_ID = token_id(PLACEHOLDER)
# A blake2b of token_id's parameters to copy for each new token: a fifth less time than
# constructing one from its keyword arguments.
_BLAKE2B_8 = hashlib.blake2b(digest_size=8)
# What a token may open a comment as (the rule is in _comment_mask).
_OPENS_SLASHES, _OPENS_HASH, _OPENS_SLASH, _OPENS_DASHES, _OPENS_STAR = 1, 2, 3, 4, 5
_OPENERS = {
    "//": _OPENS_SLASHES,
    "#": _OPENS_HASH,
    "/": _OPENS_SLASH,
    "--": _OPENS_DASHES,
    "*": _OPENS_STAR,
    "**": _OPENS_STAR,
}
# The comment rule looks at a token, whether it is the first of its line, the whitespace before
# it and the next token if that one touches it (no whitespace between): all but "first of the
# text" are properties of the lexer's match (whitespace included), so the vocabulary keeps them
# as a match's *kind* and as what it is to the token before it (*follow*), and the rule is one
# table lookup at the few tokens of an opening kind.
_NONE, _ALWAYS, _HASH_AT_0, _SLASH, _DASHES, _DASHES_AT_0, _STAR, _STAR_AT_0 = range(8)
# kind of (opener, whitespace before it, newline before it); the *_AT_0 kinds open only as the
# text's first token, which has no newline before it but is first of its line.
_KIND = np.zeros((6, 2, 2), dtype=np.int8)
_KIND[_OPENS_SLASHES] = _ALWAYS
_KIND[_OPENS_HASH] = [[_HASH_AT_0, _HASH_AT_0], [_ALWAYS, _ALWAYS]]  # `#` opens after a space
_KIND[_OPENS_SLASH] = _SLASH
_KIND[_OPENS_DASHES] = [[_DASHES_AT_0, _DASHES_AT_0], [_DASHES_AT_0, _DASHES]]
_KIND[_OPENS_STAR] = [[_STAR_AT_0, _STAR_AT_0], [_STAR_AT_0, _STAR]]
_AT_0 = np.arange(8, dtype=np.int8)  # the kind of a text's first token
_AT_0[[_HASH_AT_0, _DASHES_AT_0, _STAR_AT_0]] = [_ALWAYS, _DASHES, _STAR]
# follow: 0 whitespace before it (or no next token), 1 touching, 2 a touching `*` or `**`, 3 a
# touching `/`.
_OPENS = np.zeros((8, 4), dtype=bool)
_OPENS[_ALWAYS] = True
_OPENS[_SLASH, 2] = True  # `/*`, `/**`
_OPENS[_DASHES, 0] = True  # a leading `--` then a space (not `--x`)
_OPENS[_STAR, [0, 3]] = True  # ` * text` and ` */` open a line inside a block comment; `*p` does not
_MAX_VOCABULARY = 2_000_000  # bounded: a long-lived server sees unbounded vocabularies


class _Vocabulary:
    """Every distinct match of the lexer this process has seen (a token with the whitespace
    before it) and what tokenize needs of it, so that a token costs one dict lookup and numpy
    gathers: 30 MB of code are 6.2 M tokens but 0.45 M distinct matches, and computing a
    token's length, newlines, kind and id per token was two thirds of the tokeniser's time.

    Threads may tokenize at once: a match is published in ``row`` only after its attributes
    are in the tables (grown by copying, under a lock), and a full vocabulary is replaced, not
    emptied, so a reader's rows stay valid for the tables it reads.
    """

    _lock = threading.Lock()
    _TABLES = ("ids", "abstract", "with_ws", "length", "newlines", "kind", "follow")

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.size = 0
        self.ids = np.empty(0, dtype=np.uint64)  # token_id of the token
        self.abstract = np.empty(0, dtype=np.uint64)  # its abstract id outside comments
        self.with_ws = np.empty(0, dtype=np.int64)  # characters, whitespace included
        self.length = np.empty(0, dtype=np.int64)  # characters of the token
        self.newlines = np.empty(0, dtype=np.int64)  # in the whitespace before it
        self.kind = np.empty(0, dtype=np.int8)  # what it may open a comment as (_KIND)
        self.follow = np.empty(0, dtype=np.int8)  # what it is to the token before it (_OPENS)

    def rows(self, raw: list[str]) -> np.ndarray:
        """The row of each match, adding the matches not seen before."""
        rows = np.fromiter(map(self.row.get, raw, itertools.repeat(-1)), dtype=np.intp, count=len(raw))
        miss = (rows < 0).nonzero()[0]
        if len(miss):
            missing = [raw[miss[0]]] if len(miss) == 1 else operator.itemgetter(*miss.tolist())(raw)
            with self._lock:  # (another thread may have added some since)
                self._add(list(itertools.filterfalse(self.row.__contains__, dict.fromkeys(missing))))
            rows[miss] = np.fromiter(map(self.row.__getitem__, missing), dtype=np.intp, count=len(miss))
        return rows

    def _add(self, new: list[str]) -> None:
        n, end = len(new), self.size + len(new)
        if end > len(self.ids):
            grown = max(end, 2 * len(self.ids), 1024)
            for name in self._TABLES:
                old = getattr(self, name)
                table = np.empty(grown, dtype=old.dtype)
                table[: self.size] = old[: self.size]
                setattr(self, name, table)
        toks = list(map(str.lstrip, new))  # `\s` and str.isspace agree on what whitespace is
        copy, digests = _BLAKE2B_8.copy, []
        for tok in toks:
            h = copy()
            h.update(tok.encode("utf-8", "surrogatepass"))
            digests.append(h.digest())
        ids = np.frombuffer(b"".join(digests), dtype="<u8")
        self.ids[self.size : end] = ids
        with_ws = np.fromiter(map(len, new), dtype=np.int64, count=n)
        length = np.fromiter(map(len, toks), dtype=np.int64, count=n)
        newlines = np.fromiter(map(str.count, new, itertools.repeat("\n")), dtype=np.int64, count=n)
        self.with_ws[self.size : end], self.length[self.size : end] = with_ws, length
        self.newlines[self.size : end] = newlines
        ident = np.fromiter(map(str.isidentifier, toks), dtype=bool, count=n)
        keyword = np.fromiter(map(KEYWORDS.__contains__, toks), dtype=bool, count=n)
        self.abstract[self.size : end] = np.where(ident & ~keyword, np.uint64(PLACEHOLDER_ID), ids)
        opener = np.fromiter(map(_OPENERS.get, toks, itertools.repeat(0)), dtype=np.int8, count=n)
        touching = with_ws == length
        spaced, newline = (~touching).view(np.int8), (newlines > 0).view(np.int8)  # (bools index as masks)
        self.kind[self.size : end] = _KIND[opener, spaced, newline]
        follow = np.where(opener == _OPENS_STAR, 2, np.where(opener == _OPENS_SLASH, 3, 1))
        self.follow[self.size : end] = np.where(touching, follow, 0)
        self.row.update(zip(new, range(self.size, end), strict=True))
        self.size = end


_VOCABULARY = _Vocabulary()


def _matches(text: str) -> tuple[_Vocabulary, np.ndarray]:
    """The vocabulary and the row of each of ``text``'s matches in it."""
    global _VOCABULARY
    vocabulary = _VOCABULARY
    if vocabulary.size > _MAX_VOCABULARY:
        vocabulary = _VOCABULARY = _Vocabulary()
    return vocabulary, vocabulary.rows(_lexer_for(text).findall(text))


def _comment_mask(vocabulary: _Vocabulary, rows: np.ndarray, line: np.ndarray) -> np.ndarray | None:
    """Tokens inside comments, by a rule that looks at one line only (see the module docstring);
    None when there are none. Evaluated at the few tokens of an opening kind, then each comment
    runs from its first opening token to the end of its line."""
    n = len(rows)
    kinds = vocabulary.kind[rows]
    at = kinds.nonzero()[0]
    if len(at) == 0:
        return None
    kind = kinds[at]
    if at[0] == 0:
        kind[0] = _AT_0[kind[0]]
    follow = vocabulary.follow[rows[np.minimum(at + 1, n - 1)]]
    if at[-1] == n - 1:
        follow[-1] = 0  # the last token has no next one
    p = at[_OPENS[kind, follow]]
    if len(p) == 0:
        return None
    opened = line[p]
    if len(p) > 1:  # the first opening token of each line
        firsts = np.empty(len(p), dtype=bool)
        firsts[0] = True
        np.not_equal(opened[1:], opened[:-1], out=firsts[1:])
        p, opened = p[firsts], opened[firsts]
    # +1 from each comment's first token, -1 from the next line's first token (one per line,
    # so the running sum is 0 or 1 and int8 suffices).
    delta = np.zeros(n + 1, dtype=np.int8)
    delta[p] = 1
    delta[line.searchsorted(opened, side="right")] -= 1
    mask: np.ndarray = delta.cumsum(dtype=np.int8)[:n].view(bool)
    return mask


def tokenize(text: str, lang: str = "unknown") -> Tokens:
    """Split code into normalised tokens; never fails on malformed code. ``lang`` is accepted
    for callers that know it; tokens are the same without it."""
    vocabulary, rows = _matches(text)
    end = vocabulary.with_ws[rows]
    end.cumsum(out=end)
    start = end - vocabulary.length[rows]
    concrete = vocabulary.ids[rows]
    # No token holds a newline (no alternative of the lexer crosses one), so a token's line is
    # one more than the newlines in the whitespace before it and before every earlier token.
    line = vocabulary.newlines[rows]
    line.cumsum(out=line)
    line += 1
    comment = _comment_mask(vocabulary, rows, line)
    abstract = vocabulary.abstract[rows]
    if comment is None:
        comment = np.zeros(len(rows), dtype=bool)
    else:
        np.copyto(abstract, concrete, where=comment)  # comment words are kept as written
    return Tokens(
        concrete=concrete,
        abstract=abstract,
        start=start,
        end=end,
        line=line,
        end_line=line.copy(),
        comment=comment,
    )


def normalized_text(text: str, lang: str = "unknown") -> str:
    """The concrete token stream joined by single spaces: what "normalised code" means here."""
    return " ".join(map(str.lstrip, _lexer_for(text).findall(text)))
