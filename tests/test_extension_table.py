"""One table from file extension to language serves the index, the completion engine and the
language server (stacklens.languages)."""

from __future__ import annotations

from completion.crossfile import language_of as snippet_language
from index.normalize import LANG_OF_EXT, language_for
from lsp_server.documents import language_of as document_language
from stacklens.languages import EXTENSIONS


def test_every_layer_reads_the_one_table() -> None:
    assert set(LANG_OF_EXT) == set(EXTENSIONS)
    for ext, lang in EXTENSIONS.items():
        assert snippet_language(f"src/a{ext}") == lang
        assert document_language(f"file:///w/a{ext.upper()}", None) == lang
    # The index keeps its own names for VS Code's ids.
    assert language_for("x.sh") == "shell" and language_for("x.tsx") == "typescript"
    assert snippet_language("Makefile") == "unknown" == document_language("untitled:Untitled-1", None)
