"""Code actions on a highlighted range: open the source, insert an attribution comment, ignore the
match here, allow-list the repository."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from membership import Match

from .commands import ALLOW_REPO_COMMAND, IGNORE_COMMAND, OPEN_SOURCE_COMMAND
from .documents import DocumentText, path_hint
from .evidence import DIFF_COMMAND
from .highlights import Highlight, lines_of
from .policy import source_key
from .search_page import page_base, page_link
from .state import StacklensServer

_HASH = {"python", "ruby", "shellscript", "perl", "r", "yaml", "toml", "makefile", "dockerfile",
         "powershell", "elixir", "julia", "nim", "coffeescript", "cmake"}  # fmt: skip
_DASH = {"lua", "sql", "haskell", "ada", "elm"}
_SEMI = {"emacs-lisp", "lisp", "scheme", "clojure", "commonlisp", "racket"}
_PERCENT = {"latex", "tex", "erlang", "matlab", "prolog"}
_BLOCK = {"html": ("<!--", "-->"), "xml": ("<!--", "-->"), "markdown": ("<!--", "-->"),
          "css": ("/*", "*/"), "vue": ("<!--", "-->"), "ocaml": ("(*", "*)")}  # fmt: skip


def comment(language: str, text: str) -> str:
    """``text`` as a one-line comment in ``language``'s syntax (C-style by default)."""
    lang = language.lower()
    if lang in _HASH:
        return f"# {text}"
    if lang in _DASH:
        return f"-- {text}"
    if lang in _SEMI:
        return f";; {text}"
    if lang in _PERCENT:
        return f"% {text}"
    if lang in _BLOCK:
        open_, close = _BLOCK[lang]
        return f"{open_} {text} {close}"
    return f"// {text}"


def attribution(m: Match) -> str:
    licence = m.source.license or "licence unknown"
    url = f" {m.source.url}" if m.source.url else ""
    return f"Adapted from {source_key(m)} ({lines_of(m)}, {licence}){url}"


def attribution_edit(uri: str, doc: DocumentText, language: str, h: Highlight) -> types.WorkspaceEdit:
    """Insert the comment on its own line above the highlight, at the line's indentation."""
    line = doc.position_at(h.start).line
    start = doc.starts[line]
    line_text = doc.text[start : doc.starts[line + 1] if line + 1 < len(doc.starts) else len(doc.text)]
    indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
    newline = "\r\n" if "\r\n" in doc.text else "\n"
    insert = indent + comment(language, attribution(h.matches[0])) + newline
    at = types.Position(line=line, character=0)
    edit = types.TextEdit(range=types.Range(start=at, end=at), new_text=insert)
    return types.WorkspaceEdit(changes={uri: [edit]})


def actions_for(
    uri: str, doc: DocumentText, language: str, h: Highlight, page: str | None = None
) -> list[types.CodeAction]:
    """``page``: the stack search page, where a source without a URL of its own is opened."""
    top = h.matches[0]
    out: list[types.CodeAction] = []
    name = Path(path_hint(uri) or "").name or None  # the file name tells the page the language
    url = top.source.url or (page_link(page, h.text, name) if page else None)
    if url:
        out.append(
            types.CodeAction(
                title=f"stacklens: open source {source_key(top)}"
                + ("" if top.source.url else " in stack search"),
                kind=types.CodeActionKind.QuickFix,
                command=types.Command(
                    title="Open source", command=OPEN_SOURCE_COMMAND, arguments=[{"url": url}]
                ),
            )
        )
    out.append(
        types.CodeAction(
            title=f"stacklens: compare with the source {source_key(top)}",
            kind=types.CodeActionKind.QuickFix,
            command=types.Command(
                title="Compare with the source", command=DIFF_COMMAND, arguments=[{"uri": uri, "id": h.id}]
            ),
        )
    )
    out.append(
        types.CodeAction(
            title="stacklens: insert attribution comment",
            kind=types.CodeActionKind.QuickFix,
            edit=attribution_edit(uri, doc, language, h),
        )
    )
    out.append(
        types.CodeAction(
            title="stacklens: ignore this match here",
            kind=types.CodeActionKind.QuickFix,
            command=types.Command(
                title="Ignore match", command=IGNORE_COMMAND, arguments=[{"uri": uri, "id": h.id}]
            ),
        )
    )
    for repo in dict.fromkeys(m.source.repo for m in h.matches if m.source.repo):
        out.append(
            types.CodeAction(
                title=f"stacklens: allow-list repository {repo}",
                kind=types.CodeActionKind.QuickFix,
                command=types.Command(
                    title="Allow repository", command=ALLOW_REPO_COMMAND, arguments=[{"repo": repo}]
                ),
            )
        )
    return out


def register(ls: StacklensServer) -> None:
    @ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: StacklensServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        snap = ls.snapshot(uri)
        if snap is None:
            return None
        doc, language = snap
        lo, hi = doc.offset_at(params.range.start), doc.offset_at(params.range.end)
        actions: list[types.CodeAction] = []
        cfg = ls.config.membership
        page = page_base(cfg.search_page_url, cfg.url)
        for h in ls.highlights.at(uri, lo, hi):
            actions.extend(actions_for(uri, doc, language, h, page))
        return actions or None
