"""Cross-file context: windows of the other open documents ranked by similarity to the code
around the cursor (Jaccard over identifier sets, as Copilot's neighbouring tabs)."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from completion.types import OpenDocument
from stacklens.languages import language_of_path

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keywords and one-letter names say nothing about which file is related.
_STOPWORDS = frozenset(
    [
        "if",
        "else",
        "elif",
        "for",
        "while",
        "return",
        "def",
        "class",
        "import",
        "from",
        "as",
        "in",
        "is",
        "not",
        "and",
        "or",
        "self",
        "this",
        "const",
        "let",
        "var",
        "function",
        "public",
        "private",
        "static",
        "void",
        "int",
        "new",
        "true",
        "false",
        "none",
        "null",
        "True",
        "False",
        "None",
        "with",
        "try",
        "except",
        "finally",
        "raise",
        "pass",
        "break",
        "continue",
    ]
)
MAX_DOC_CHARS = 100_000


@dataclass(frozen=True)
class Snippet:
    uri: str
    text: str
    score: float


def _words(text: str) -> frozenset[str]:
    found = set(_WORD.findall(text))
    found -= _STOPWORDS  # on the distinct words: a window repeats most of its own
    return frozenset(w for w in found if len(w) > 1)


class SnippetIndex:
    """Per-document windows and their word sets, cached by (uri, text) so that ranking costs
    only set intersections on each keystroke."""

    def __init__(self, window_lines: int = 30, max_docs: int = 64) -> None:
        self.window_lines = window_lines
        self.max_docs = max_docs
        self._cache: OrderedDict[str, tuple[str, list[tuple[str, frozenset[str]]]]] = OrderedDict()

    def _windows(self, doc: OpenDocument) -> list[tuple[str, frozenset[str]]]:
        hit = self._cache.get(doc.uri)
        if hit is not None and (hit[0] is doc.text or hit[0] == doc.text):
            self._cache.move_to_end(doc.uri)
            return hit[1]
        lines = doc.text[:MAX_DOC_CHARS].split("\n")
        step = max(1, self.window_lines // 2)
        # Windows overlap by half: find the words of each half once, a window unites two.
        halves = [_words("\n".join(lines[i : i + step])) for i in range(0, len(lines), step)]
        out: list[tuple[str, frozenset[str]]] = []
        for start in range(0, max(1, len(lines) - step), step):
            chunk = "\n".join(lines[start : start + self.window_lines])
            h, whole = start // step, self.window_lines // step
            words = halves[h].union(*halves[h + 1 : h + whole])
            extra = lines[start + whole * step : start + self.window_lines]  # an odd last line
            if extra:
                words |= _words("\n".join(extra))
            if words:
                out.append((chunk, words))
        self._cache[doc.uri] = (doc.text, out)
        if len(self._cache) > self.max_docs:
            self._cache.popitem(last=False)
        return out

    def rank(
        self, query: str, docs: Sequence[OpenDocument], max_snippets: int, exclude_uri: str = ""
    ) -> list[Snippet]:
        """Best window per document, best documents first; windows sharing nothing are dropped."""
        q = _words(query)
        if not q or max_snippets <= 0:
            return []
        best: list[Snippet] = []
        for doc in docs:
            if doc.uri == exclude_uri or not doc.text.strip():
                continue
            top: tuple[float, str] | None = None
            for chunk, words in self._windows(doc):
                inter = len(q & words)
                if not inter:
                    continue
                score = inter / (len(q) + len(words) - inter)
                if top is None or score > top[0]:
                    top = (score, chunk)
            if top is not None:
                best.append(Snippet(doc.uri, top[1], top[0]))
        best.sort(key=lambda s: -s.score)
        return best[:max_snippets]


_COMMENT = {
    "#": [
        "python",
        "shellscript",
        "sh",
        "bash",
        "ruby",
        "perl",
        "r",
        "yaml",
        "toml",
        "dockerfile",
        "makefile",
        "julia",
        "elixir",
        "nim",
    ],
    "--": ["sql", "lua", "haskell", "ada", "elm"],
    ";": ["clojure", "lisp", "scheme", "racket"],
    "%": ["matlab", "erlang", "latex", "tex"],
}
_LANG_COMMENT = {lang: mark for mark, langs in _COMMENT.items() for lang in langs}


def comment_mark(language_id: str) -> str:
    return _LANG_COMMENT.get(language_id.lower(), "//")


def as_comment_block(path: str, text: str, language_id: str) -> str:
    """A snippet for a model without repo-level tokens: commented, headed by its path."""
    mark = comment_mark(language_id)
    body = "\n".join(f"{mark} {line}" if line else mark for line in text.split("\n"))
    return f"{mark} Path: {path}\n{body}\n"


def language_of(path: str) -> str:
    """A language id from a file name, for the comment style of snippets (others use //)."""
    return language_of_path(path)
