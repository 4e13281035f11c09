"""Normalising code into token streams that whitespace, comments and renaming cannot hide.

A file becomes two parallel token streams with the same positions:
- *concrete*: every token as written (whitespace and comments dropped), so reindented or
  comment-stripped copies still match exactly;
- *abstract*: identifiers replaced by one placeholder (keywords, builtins, literals and operators
  kept), so a copy whose names were all changed still matches.
Each token keeps its character span and 1-based line in the original text, so a match found on
tokens can be reported in lines and characters of the text the user sees.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import re
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

# Strings never span lines: a fragment that starts inside a triple-quoted string (completions
# and copied snippets often do) must tokenize the same as the file it came from, so triple
# quotes are plain tokens and a docstring's words are tokens like any others.
_STRING = r"[rRbBuUfF]{0,2}(?:\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
_OPS = (
    r"\.\.\.|>>=|<<=|\*\*=|//=|===|!==|==|!=|<=|>=|->|=>|::|\+\+|--|&&|\|\||<<|>>|\*\*|//"
    r"|\+=|-=|\*=|/=|%=|&=|\|=|\^=|:=|[^\s\w]"
)
_COMMENTS = {
    "hash": r"\#[^\n]*",
    "slash": r"//[^\n]*|/\*[\s\S]*?(?:\*/|\Z)",
    "dash": r"--[^\n]*",
}
_STYLE_OF_LANG = {
    "python": ("hash",),
    "shell": ("hash",),
    "ruby": ("hash",),
    "perl": ("hash",),
    "r": ("hash",),
    "yaml": ("hash",),
    "toml": ("hash",),
    "make": ("hash",),
    "cmake": ("hash",),
    "c": ("slash",),
    "cpp": ("slash",),
    "java": ("slash",),
    "javascript": ("slash",),
    "typescript": ("slash",),
    "go": ("slash",),
    "rust": ("slash",),
    "csharp": ("slash",),
    "kotlin": ("slash",),
    "swift": ("slash",),
    "scala": ("slash",),
    "dart": ("slash",),
    "php": ("slash", "hash"),
    "sql": ("dash",),
    "lua": ("dash",),
    "haskell": ("dash",),
    "unknown": ("slash", "hash"),
}
LANG_OF_EXT = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".sh": "shell",
    ".bash": "shell",
    ".rb": "ruby",
    ".pl": "perl",
    ".pm": "perl",
    ".r": "r",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".toml": "toml",
    ".mk": "make",
    ".cmake": "cmake",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".java": "java",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".dart": "dart",
    ".php": "php",
    ".sql": "sql",
    ".lua": "lua",
    ".hs": "haskell",
}
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
}
_PYTHON_NAMES = (
    frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"self", "cls"}
)
# Keywords and ubiquitous library names of the other languages: kept as written in the
# abstract stream, since renaming a copy never changes them.
_OTHER_WORDS = """
    abstract auto bool boolean break byte case catch char class const continue debugger default
    defer delete do double else enum export extends extern false final finally float fn for func
    function go goto if impl implements import in instanceof int interface let long loop match
    mod module mut namespace native new nil null package private protected pub public register
    return self Self short signed sizeof static struct super switch synchronized template this
    throw throws trait true try type typedef typeof union unsafe unsigned use using var virtual
    void volatile where while yield async await crate dyn readonly undefined string number
    console std printf malloc free None True False def elif except lambda not or and is with
    pass raise global nonlocal from as del assert local end then elseif nil function
"""
_OTHER_NAMES = frozenset(_OTHER_WORDS.split())


def keywords_for(lang: str) -> frozenset[str]:
    """Names that the abstract stream keeps as written, for one language."""
    return _PYTHON_NAMES if lang == "python" else _OTHER_NAMES


PLACEHOLDER = "\x00I"


def language_for(path: str | None = None, hint: str | None = None) -> str:
    """Our language name for an editor/Stack language id or a file name; "unknown" otherwise."""
    if hint:
        name = _LANG_ALIASES.get(hint.lower(), hint.lower())
        if name in _STYLE_OF_LANG:
            return name
    if path:
        dot = path.rfind(".")
        if dot >= 0:
            return LANG_OF_EXT.get(path[dot:].lower(), "unknown")
    return "unknown"


def guess_language(text: str) -> str:
    """Best guess for text of unknown origin (stdin, HTTP); Python's `//` is division."""
    head = text[:4000]
    if re.search(r"^\s*(def |class \w+.*:\s*$|import \w|from \S+ import )", head, re.M):
        return "python"
    return "unknown"


@cache
def _lexer(lang: str) -> re.Pattern[str]:
    comments = "|".join(_COMMENTS[s] for s in _STYLE_OF_LANG.get(lang, _STYLE_OF_LANG["unknown"]))
    # Groups: leading whitespace, then exactly one of triple quote, string, identifier, comment,
    # number, operator. Whitespace is consumed inside each match (possessively) because failing
    # every alternative at each indentation space costs more than the whole tokenisation, and
    # it lets `findall` (no Python code per token) recover every offset by summing lengths.
    # Strings come before identifiers so that r"..." and b'...' keep their prefix.
    # Four groups, not one per kind: findall builds a tuple per token, and only identifiers and
    # comments need telling apart from the rest.
    return re.compile(
        rf"(\s*+)(?:(\"\"\"|'''|{_STRING})|([^\W\d]\w*+)|({comments})"
        rf"|(\d[\w.]*|\.\d[\w.]*|{_OPS}))"
    )


def token_id(tok: str) -> int:
    """A stable 64-bit id for a token (same in every process, unlike ``hash``)."""
    return int.from_bytes(
        hashlib.blake2b(tok.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


@dataclass(frozen=True)
class Tokens:
    """Parallel arrays, one entry per normalised token."""

    concrete: np.ndarray  # uint64 token ids as written
    abstract: np.ndarray  # uint64 token ids with identifiers abstracted
    start: np.ndarray  # int64 char offset in the original text
    end: np.ndarray  # int64 char offset (exclusive)
    line: np.ndarray  # int64 1-based line of the token's first character
    end_line: np.ndarray  # int64 1-based line of the token's last character

    def __len__(self) -> int:
        return len(self.concrete)

    @cached_property
    def char_prefix(self) -> np.ndarray:
        """``char_prefix[i]``: normalised characters of tokens ``[0, i)`` (length ``n + 1``)."""
        return np.r_[0, np.cumsum(self.end - self.start)]

    def norm_chars(self, i: int, j: int) -> int:
        """Normalised characters (token text without whitespace) of tokens ``[i, j)``."""
        return int(self.char_prefix[j] - self.char_prefix[i])


PLACEHOLDER_ID = token_id(PLACEHOLDER)
_ID_CACHE: dict[str, int] = {}


def _lex(text: str, lang: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Tokens (comments dropped), their end offsets, and identifier / comment masks."""
    rows = _lexer(lang).findall(text)
    if not rows:
        e = np.empty(0, dtype=np.int64)
        return [], e, e.astype(bool), e.astype(bool)
    ws, string, ident, comment, other = zip(*rows, strict=False)
    toks = list(map("".join, zip(string, ident, comment, other, strict=False)))
    lens = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
    ends = np.cumsum(np.fromiter(map(len, ws), dtype=np.int64, count=len(ws)) + lens)
    is_ident = np.fromiter(map(bool, ident), dtype=bool, count=len(ident))
    is_comment = np.fromiter(map(bool, comment), dtype=bool, count=len(comment))
    return toks, ends, is_ident, is_comment


def tokenize(text: str, lang: str = "unknown") -> Tokens:
    """Split code into normalised tokens; never fails on malformed code."""
    toks, end, is_ident, is_comment = _lex(text, lang)
    if is_comment.any():
        keep = ~is_comment
        toks = [t for t, k in zip(toks, keep, strict=False) if k]
        end, is_ident = end[keep], is_ident[keep]
    cache = _ID_CACHE
    if len(cache) > 2_000_000:  # bounded: a long-lived server sees unbounded vocabularies
        cache.clear()
    ids = list(map(cache.get, toks))
    for i, value in enumerate(ids):
        if value is None:
            ids[i] = cache[toks[i]] = token_id(toks[i])
    concrete = np.asarray(ids, dtype=np.uint64)
    if is_ident.any():
        is_kw = np.fromiter(map(keywords_for(lang).__contains__, toks), dtype=bool, count=len(toks))
        abstract = np.where(is_ident & ~is_kw, np.uint64(PLACEHOLDER_ID), concrete)
    else:
        abstract = concrete.copy()
    start = end - np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
    newlines = np.flatnonzero(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) == 10)
    line = np.searchsorted(newlines, start, side="right") + 1
    end_line = np.searchsorted(newlines, np.maximum(end - 1, start), side="right") + 1
    return Tokens(
        concrete=concrete,
        abstract=abstract.astype(np.uint64),
        start=start,
        end=end,
        line=line.astype(np.int64),
        end_line=end_line.astype(np.int64),
    )


def normalized_text(text: str, lang: str = "unknown") -> str:
    """The concrete token stream joined by single spaces: what "normalised code" means here."""
    toks, _, _, is_comment = _lex(text, lang)
    return " ".join(t for t, c in zip(toks, is_comment, strict=False) if not c)
