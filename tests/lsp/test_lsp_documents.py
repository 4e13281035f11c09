"""Incremental document edits (issue 13 item 10): an edit re-splits only the lines it touches,
gives the same text and line starts as applying it to the whole text, and a large document's
edits and background check never split it again."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsp_helpers import CORPUS_FILE
from lsprotocol import types as T
from pygls.workspace import PositionCodec
from raw_lsp import RawServer, notification

from lsp_server.documents import STATS, DocumentText, LspTextDocument, line_starts

UTF16 = PositionCodec(T.PositionEncodingKind.Utf16)
# Line breaks LSP counts (CR, LF, CRLF), ones it does not (U+2028, U+0085, form feed), and
# characters that are two UTF-16 units.
PIECES = st.sampled_from(["a", "bc", "\r", "\n", "\r\n", "\u2028", "\x85", "\x0c", "é", "😀", " "])
TEXT = st.lists(PIECES, max_size=40).map("".join)
EDIT = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12), st.integers(0, 12), TEXT)


def change(edit: tuple[int, int, int, int, str]) -> T.TextDocumentContentChangePartial:
    l1, c1, l2, c2, text = edit
    start, end = sorted([(l1, c1), (l2, c2)])
    return T.TextDocumentContentChangePartial(
        range=T.Range(start=T.Position(*start), end=T.Position(*end)), text=text
    )


def reference(text: str, edit: tuple[int, int, int, int, str]) -> str:
    """The edit applied to the whole text, with offsets from a fresh split."""
    r = change(edit).range
    doc = DocumentText.of(text, UTF16)
    a, b = doc.offset_at(r.start), doc.offset_at(r.end)
    return text[:a] + edit[4] + text[b:]


@settings(max_examples=400, deadline=None)
@given(TEXT, st.lists(EDIT, min_size=1, max_size=8))
def test_incremental_edits_match_whole_text_edits(
    text: str, edits: list[tuple[int, int, int, int, str]]
) -> None:
    doc = LspTextDocument("file:///t.py", source=text, position_codec=UTF16)
    expected = text
    for edit in edits:
        doc.apply_change(change(edit))
        expected = reference(expected, edit)
        assert doc.source == expected
        assert doc.line_starts().tolist() == line_starts(expected).tolist()


def test_edits_do_not_split_the_document_again() -> None:
    doc = LspTextDocument("file:///t.py", source="x = 1\r\n" * 50_000, position_codec=UTF16)
    doc.line_starts()
    before = dict(STATS)
    for i in range(100):
        doc.apply_change(change((i * 7, 2, i * 7, 3, "\n")))
    assert STATS["full_splits"] == before["full_splits"]
    assert STATS["incremental_edits"] == before["incremental_edits"] + 100


def edit(uri: str, version: int, line: int) -> dict[str, object]:
    """Replace the first five characters of ``line`` (an edit far from the highlight above it)."""
    span = {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 5}}
    return notification(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": span, "text": "total"}],
        },
    )


def hover(s: RawServer, rid: str, uri: str, line: int, character: int = 1) -> dict[str, object]:
    position = {"line": line, "character": character}
    reply = s.call(rid, "textDocument/hover", {"textDocument": {"uri": uri}, "position": position})
    assert "error" not in reply, reply
    return reply


@pytest.mark.integration
def test_large_document_edits_are_incremental_and_the_check_does_not_split_it(lsp_index: Path) -> None:
    """A 20 MB document that starts with copied code: opened, checked in the background (which
    highlights the copy), then 30 edits below the highlight, each answered by a hover round trip.
    The server split it once, when it opened, and never again: not per edit, not to keep the
    highlight in place, not for the check."""
    filler = "value = compute(value) + 1  # filler line\n"
    text = CORPUS_FILE + filler * (20_000_000 // len(filler))
    uri = "file:///big/huge.py"
    s = RawServer()
    try:
        s.initialize({"membership": {"index": str(lsp_index), "backgroundDebounceMs": 0}})
        doc = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        s.message(notification("textDocument/didOpen", {"textDocument": doc}))
        opened = s.status("opened")["documentLines"]
        assert opened["fullSplits"] == 1
        while not any(n["params"]["uri"] == uri for n in s.notices("textDocument/publishDiagnostics")):
            s.status("poll")  # until the background check has published its highlight
        published = [n for n in s.notices("textDocument/publishDiagnostics") if n["params"]["uri"] == uri]
        copied = published[-1]["params"]["diagnostics"][0]["range"]["start"]
        for i in range(30):
            s.message(edit(uri, i + 2, 40 + i * 1000))
            hover(s, f"h{i}", uri, 40 + i * 1000)
        on_copy = hover(s, "copy", uri, copied["line"], copied["character"])["result"]
        assert on_copy and "acme/trees" in str(on_copy)  # the highlight followed the edits
        after = s.status("after")
        assert after["documentLines"]["fullSplits"] == opened["fullSplits"]
        assert after["documentLines"]["incrementalEdits"] == opened["incrementalEdits"] + 30
    finally:
        s.close()
