""" "Open source" for a match whose source has no URL: a link into the stack search page of
`code-search serve` (membership.searchPageUrl, else the membership service's URL)."""

from __future__ import annotations

import urllib.parse

import pytest
from lsprotocol import types as T
from pygls.workspace import PositionCodec

from lsp_server.code_actions import actions_for
from lsp_server.commands import OPEN_SOURCE_COMMAND
from lsp_server.config import ConfigError, ConfigLayers
from lsp_server.documents import DocumentText
from lsp_server.highlights import Highlight
from lsp_server.search_page import MAX_LINK_CHARS, page_base, page_link
from membership import Match

TEXT = "def copied(a, b):\n    return a + b\n"


def match(url: str | None) -> Match:
    return Match.model_validate(
        {
            "kind": "exact", "score": 0.9, "matched_chars": 30,
            "source": {"repo": "acme/x", "path": "a.py", "license": "MIT", "url": url},
            "source_span": {"start_line": 3, "end_line": 4},
            "query_span": {"start_line": 1, "end_line": 2, "start_char": 0, "end_char": len(TEXT)},
        }
    )  # fmt: skip


def open_urls(url: str | None, page: str | None) -> list[str]:
    doc = DocumentText.of(TEXT, PositionCodec(T.PositionEncodingKind.Utf16))
    h = Highlight(0, len(TEXT), TEXT, [match(url)], "scan", False)
    actions = actions_for("file:///work/src/app.py", doc, "python", h, page)
    return [
        a.command.arguments[0]["url"]
        for a in actions
        if a.command and a.command.command == OPEN_SOURCE_COMMAND
    ]


def query_of(link: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)


def test_source_without_url_opens_the_page_with_the_code() -> None:
    [link] = open_urls(None, "http://127.0.0.1:8400/")
    assert link.startswith("http://127.0.0.1:8400/?")
    assert query_of(link) == {"q": [TEXT], "path": ["app.py"]}  # the file name only, no directories
    assert open_urls("https://example.invalid/a.py", "http://127.0.0.1:8400/") == [
        "https://example.invalid/a.py"
    ]
    assert open_urls(None, None) == []


def test_long_code_is_linked_by_its_first_whole_lines() -> None:
    text = "".join(f"line_{i} = 'é' * {i}\n" for i in range(2000))
    link = page_link("http://h/", text)
    q = query_of(link)["q"][0]
    assert len(link) <= MAX_LINK_CHARS and text.startswith(q) and q.endswith("\n") and len(q) > 100
    assert len(page_link("http://h/", "x" * 50_000)) <= MAX_LINK_CHARS


def test_page_url_setting() -> None:
    layers = ConfigLayers({})
    cfg = layers.update("init", {"membership": {"url": "http://svc:8400"}}).membership
    assert page_base(cfg.search_page_url, cfg.url) == "http://svc:8400/"  # the service serves it
    cfg = layers.update("push", {"membership": {"searchPageUrl": "https://search.example/stack"}}).membership
    assert page_base(cfg.search_page_url, cfg.url) == "https://search.example/stack/"
    with pytest.raises(ConfigError, match="not an http"):
        layers.update("push", {"membership": {"searchPageUrl": "file:///etc/passwd"}})
