"""Document text and position arithmetic.

Offsets are Python str indices into a document's text; positions are LSP positions in the
negotiated encoding (UTF-16 by default), converted with pygls's `PositionCodec`. Every
conversion clamps instead of raising: clients send positions past the end of a line or file
(llm-vscode #121 crashed llm-ls that way).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import PositionCodec, TextDocument, Workspace

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # LSP's line breaks, and no others
_LINE = re.compile(rf"[^\r\n]*(?:{_LINE_BREAK.pattern})|[^\r\n]+")  # a line with its break
MAX_UNOPENED_BYTES = 2_000_000


@dataclass(frozen=True)
class DocumentText:
    """An immutable snapshot with line starts, for repeated conversions."""

    text: str
    codec: PositionCodec
    starts: tuple[int, ...]

    @classmethod
    def of(cls, text: str, codec: PositionCodec) -> DocumentText:
        starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
        return cls(text, codec, tuple(starts))

    def _line_text(self, line: int) -> str:
        """Line ``line`` without its terminator."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def offset_at(self, position: types.Position) -> int:
        """Clamped str offset of ``position``: past the end of a line means its end."""
        if position.line < 0:
            return 0
        if position.line >= len(self.starts):
            return len(self.text)
        line = self._line_text(position.line)
        units, chars = 0, 0
        unit_of = self.codec.impl.code_units_for_char
        for ch in line:
            if units >= position.character:
                break
            units += unit_of(ch)
            chars += 1
        return self.starts[position.line] + chars

    def position_at(self, offset: int) -> types.Position:
        """LSP position of str offset ``offset`` (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[line]
        # An offset inside a CRLF pair belongs at the end of its line.
        column_text = self.text[start:offset].rstrip("\r\n")
        return types.Position(line=line, character=self.codec.client_num_units(column_text))

    def range_of(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position_at(start), end=self.position_at(end))

    def end_position(self) -> types.Position:
        return self.position_at(len(self.text))


class LspTextDocument(TextDocument):
    """pygls's document with LSP's line breaks. pygls splits lines with ``str.splitlines``,
    which also breaks at U+2028, U+0085, form feeds and more; LSP counts only CR, LF and CRLF.
    A document holding one of those got every later edit applied on the wrong line."""

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(_LINE.findall(self.source))


class LspWorkspace(Workspace):
    """Creates `LspTextDocument`s (installed over pygls's workspace at initialize)."""

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )


def use_lsp_lines(workspace: Workspace) -> None:
    """Make ``workspace`` (built by pygls at initialize, before any document opens) split
    lines as LSP does. Same fields, one method overridden: swapping the class is enough."""
    if type(workspace) is Workspace:
        workspace.__class__ = LspWorkspace


def codec_of(workspace: Workspace | None) -> PositionCodec:
    return workspace.position_codec if workspace is not None else PositionCodec()


def open_text(workspace: Workspace | None, uri: str) -> tuple[str, str | None] | None:
    """(text, language id) of an open document, or of a readable file the client never opened."""
    if workspace is not None:
        doc = workspace.text_documents.get(uri)
        if doc is not None:
            return doc.source, doc.language_id
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if path:
        try:
            p = Path(path)
            if p.is_file() and p.stat().st_size <= MAX_UNOPENED_BYTES:
                return p.read_text(encoding="utf-8", errors="replace"), None
        except OSError:
            return None
    return None


_EXT_LANG = {
    ".py": "python", ".js": "javascript", ".ts": "typescript", ".rs": "rust", ".go": "go",
    ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp", ".hpp": "cpp",
    ".rb": "ruby", ".php": "php", ".cs": "csharp", ".kt": "kotlin", ".swift": "swift",
    ".sh": "shellscript", ".lua": "lua", ".el": "emacs-lisp", ".sql": "sql", ".scala": "scala",
}  # fmt: skip


def language_of(uri: str, language_id: str | None) -> str:
    """The client's language id, or one guessed from the extension (untitled buffers: unknown)."""
    if language_id:
        return language_id
    suffix = Path(uri.split("?", 1)[0]).suffix.lower()
    return _EXT_LANG.get(suffix, "unknown")


def path_hint(uri: str) -> str | None:
    """A file name for language detection; None for untitled or non-file documents."""
    if not uri.startswith("file:"):
        return None
    return to_fs_path(uri)
