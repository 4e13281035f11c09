"""Clone-type transforms of a copied span, written with Pygments lexers so that the benchmark does
not share the product's own lexer (index.normalize): re-indenting, consistent renaming, comment
removal, scattered token edits."""

from __future__ import annotations

import random
import re
from functools import cache
from pathlib import PurePath

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.token import Comment, Name, Number, String, _TokenType

_IDENT = re.compile(r"[A-Za-z_$][\w$]*\Z")
# Name tokens a renaming tool leaves alone: builtins, magic names, decorators and annotations,
# markup, and module paths (their names belong to other files).
_KEEP_NAMES = (Name.Builtin, Name.Function.Magic, Name.Variable.Magic, Name.Decorator, Name.Tag, Name.Entity)
# Preprocessor lines are code (#include, #define), not comments.
_NOT_COMMENTS = (Comment.Preproc, Comment.PreprocFile)

Tokens = list[tuple[_TokenType, str]]


@cache
def _lexer(suffix: str) -> Lexer:
    # Keep the text exactly: Pygments strips leading and trailing newlines by default.
    return get_lexer_for_filename(f"x{suffix}", stripnl=False, stripall=False, ensurenl=False)


def tokens(text: str, path: str, before: str = "", after: str = "") -> Tokens:
    """Pygments tokens of ``text``, lexed inside its file (``before`` and ``after`` it), so that
    a span that starts or ends inside a comment or a string is lexed as the file has it."""
    out: Tokens = []
    pos, start, end = 0, len(before), len(before) + len(text)
    for ttype, value in _lexer(PurePath(path).suffix.lower()).get_tokens(before + text + after):
        stop = pos + len(value)
        if stop > start and pos < end:
            out.append((ttype, value[max(0, start - pos) : end - pos]))
        pos = stop
    if "".join(v for _, v in out) != text:  # never seen; a transform must not corrupt the copy
        raise ValueError(f"the Pygments lexer for {path} does not round-trip the text")
    return out


def nonspace(text: str) -> int:
    return len(text) - sum(text.count(c) for c in " \t\r\n\f\v")


def reindent(text: str, rng: random.Random) -> str:
    """Change the indent unit (tabs or 4 spaces to 2 spaces, 2 to 4), add trailing spaces and
    blank lines."""
    lines = text.split("\n")
    widths = [len(x) - len(x.lstrip(" ")) for x in lines if x.strip() and not x.startswith("\t")]
    unit = min((w for w in widths if w), default=4)
    unit = unit if unit in (2, 4) else 4
    new = "    " if unit == 2 else "  "
    out = []
    for i, line in enumerate(lines):
        body = line.lstrip(" \t")
        lead = line[: len(line) - len(body)]
        tabs = lead.count("\t")
        spaces = len(lead) - tabs
        indent = new * (tabs + spaces // unit) + " " * (spaces % unit)
        last = i == len(lines) - 1
        out.append(indent + body + ("" if last or not body else " " * rng.randint(0, 2)))
        if not last and rng.random() < 0.15:
            out.append("")
    return "\n".join(out)


def _renameable(ttype: _TokenType, value: str) -> bool:
    return ttype in Name and not any(ttype in k for k in _KEEP_NAMES) and bool(_IDENT.match(value))


def rename(toks: Tokens) -> str:
    """Rename every user identifier consistently (never inside strings or comments)."""
    # A name also used as a builtin or a module path in the span keeps every occurrence.
    fixed = {v for t, v in toks if t in Name and not _renameable(t, v)} | {
        v for t, v in toks if t in Name.Namespace
    }
    names: dict[str, str] = {}
    out = []
    for ttype, value in toks:
        if _renameable(ttype, value) and value not in fixed and ttype not in Name.Namespace:
            value = names.setdefault(value, f"v{len(names)}_{value[::-1].lower()[:3].strip('$')}")
        out.append(value)
    return "".join(out)


def is_comment(ttype: _TokenType, lang: str) -> bool:
    if ttype in Comment:
        return not any(ttype in k for k in _NOT_COMMENTS)
    # Rust's doc comments lex as String.Doc; Python's docstrings (also String.Doc) are strings.
    return lang != "python" and ttype in String.Doc


def strip_comments(toks: Tokens, lang: str) -> str:
    """The text without its comments; lines left blank by that are dropped."""
    text = "".join(v for _, v in toks)
    kept = []
    for ttype, value in toks:
        kept.append("\n" * value.count("\n") if is_comment(ttype, lang) else value)
    before = text.split("\n")
    after = "".join(kept).split("\n")
    if len(before) != len(after):  # a lexer that lost a newline: keep every line
        before = after
    return "\n".join(a.rstrip() for a, b in zip(after, before, strict=True) if a.strip() or not b.strip())


def strip_comments_delete_line(toks: Tokens, lang: str, rng: random.Random) -> str:
    lines = strip_comments(toks, lang).split("\n")
    code = [i for i, line in enumerate(lines) if line.strip()]
    if len(code) > 4:
        del lines[rng.choice(code[1:-1])]
    return "\n".join(lines)


def edit_lines(toks: Tokens, rng: random.Random) -> str:
    """Scattered edits (clone type 3): on every third line one name or number is changed."""
    line = 0
    per_line: dict[int, list[int]] = {}
    for i, (ttype, value) in enumerate(toks):
        if "\n" not in value and value.strip() and (ttype in Name or ttype in Number):
            per_line.setdefault(line, []).append(i)
        line += value.count("\n")
    values = [v for _, v in toks]
    for n, where in per_line.items():
        if n % 3 == 1:
            i = rng.choice(where)
            values[i] = values[i] + "_changed" if toks[i][0] in Name else str(len(values[i]) + 7)
    return "".join(values)
