"""Document text and position arithmetic.

Offsets are Python str indices into a document's text; positions are LSP positions in the
negotiated encoding (UTF-16 by default), converted with pygls's `PositionCodec`. Every
conversion clamps instead of raising: clients send positions past the end of a line or file
(llm-vscode #121 crashed llm-ls that way).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import PositionCodec, TextDocument, Workspace

from stacklens.languages import language_of_path

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # LSP's line breaks, and no others
_LINE = re.compile(rf"[^\r\n]*(?:{_LINE_BREAK.pattern})|[^\r\n]+")  # a line with its break
MAX_UNOPENED_BYTES = 2_000_000
# Whole-text line splits, and edits applied by re-splitting only the lines they touch: an edit
# of a large document must not split it again (a 20 MB one took ~0.4 s per keystroke).
STATS = {"full_splits": 0, "incremental_edits": 0}


def line_starts(text: str) -> np.ndarray:
    """Offsets where each line starts (LSP's line breaks), as a read-only int64 array."""
    STATS["full_splits"] += 1
    return _frozen([0, *(m.end() for m in _LINE_BREAK.finditer(text))])


def _frozen(values: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.int64)
    arr.flags.writeable = False  # snapshots share it: edits build a new array
    return arr


@dataclass(frozen=True)
class DocumentText:
    """An immutable snapshot with line starts, for repeated conversions."""

    text: str
    codec: PositionCodec
    starts: np.ndarray  # line start offsets (`line_starts`)

    @classmethod
    def of(cls, text: str, codec: PositionCodec, starts: np.ndarray | None = None) -> DocumentText:
        """A snapshot; ``starts``: the line starts of ``text`` when already known."""
        return cls(text, codec, line_starts(text) if starts is None else starts)

    def offset_at(self, position: types.Position) -> int:
        """Clamped str offset of ``position``: past the end of a line means its end."""
        return offset_in(self.text, self.starts, self.codec, position.line, position.character)

    def position_at(self, offset: int) -> types.Position:
        """LSP position of str offset ``offset`` (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        start = int(self.starts[line])
        # An offset inside a CRLF pair belongs at the end of its line.
        column_text = self.text[start:offset].rstrip("\r\n")
        return types.Position(line=line, character=self.codec.client_num_units(column_text))

    def range_of(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position_at(start), end=self.position_at(end))

    def end_position(self) -> types.Position:
        return self.position_at(len(self.text))


def offset_in(text: str, starts: np.ndarray, codec: PositionCodec, line: int, character: int) -> int:
    """Clamped str offset of an LSP position in ``text``, whose line starts are ``starts``."""
    if line < 0:
        return 0
    if line >= len(starts):
        return len(text)
    start = int(starts[line])
    end = int(starts[line + 1]) if line + 1 < len(starts) else len(text)
    units, chars = 0, 0
    unit_of = codec.impl.code_units_for_char
    for ch in text[start:end].rstrip("\r\n"):
        if units >= character:
            break
        units += unit_of(ch)
        chars += 1
    return start + chars


def spliced_starts(starts: np.ndarray, new_text: str, a: int, b: int, inserted: int) -> np.ndarray:
    """Line starts of ``new_text``, made by replacing ``[a, b)`` of a text whose line starts
    were ``starts`` with ``inserted`` chars. Only the lines around the edit are split again:
    one line of margin on each side covers a CR and an LF that the edit joins or parts."""
    n = len(starts)
    first = max(0, int(np.searchsorted(starts, a, side="right")) - 2)
    after = min(n, int(np.searchsorted(starts, b, side="right")) + 1)  # first start kept as is
    delta = inserted - (b - a)
    lo = int(starts[first])
    hi = int(starts[after]) + delta if after < n else len(new_text)
    ends = [m.end() for m in _LINE_BREAK.finditer(new_text, lo, hi)]
    mid = [e for e in ends if after == n or e < hi]
    STATS["incremental_edits"] += 1
    return _frozen(
        np.concatenate([starts[: first + 1], np.asarray(mid, dtype=np.int64), starts[after:] + delta])
    )


class LspTextDocument(TextDocument):
    """pygls's document with LSP's line breaks, edited incrementally.

    pygls splits lines with ``str.splitlines``, which also breaks at U+2028, U+0085, form feeds
    and more; LSP counts only CR, LF and CRLF: a document holding one of those got every later
    edit applied on the wrong line. And pygls splits the whole document and joins it again for
    every edit; here an edit re-splits the lines it touches and shifts the starts after them."""

    _starts: np.ndarray | None = None

    @property
    def lines(self) -> tuple[str, ...]:
        STATS["full_splits"] += 1  # pygls's own helpers split the whole text here
        return tuple(_LINE.findall(self.source))

    def line_starts(self) -> np.ndarray:
        """Line starts of the current text (split once, then kept up to date by edits)."""
        if self._starts is None:
            self._starts = line_starts(self.source)
        return self._starts

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        starts, text, codec = self.line_starts(), self.source, self._position_codec
        r = change.range
        a = offset_in(text, starts, codec, r.start.line, r.start.character)
        b = offset_in(text, starts, codec, r.end.line, r.end.character)
        a, b = min(a, b), max(a, b)
        new_text = text[:a] + change.text + text[b:]
        self._starts = spliced_starts(starts, new_text, a, b, len(change.text))
        self._source = new_text

    def _apply_full_change(self, change: types.TextDocumentContentChangeEvent) -> None:
        super()._apply_full_change(change)
        self._starts = None


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


def language_of(uri: str, language_id: str | None) -> str:
    """The client's language id, or one guessed from the extension (untitled buffers: unknown)."""
    if language_id:
        return language_id
    return language_of_path(uri)


def path_hint(uri: str) -> str | None:
    """A file name for language detection; None for untitled or non-file documents."""
    if not uri.startswith("file:"):
        return None
    return to_fs_path(uri)
