"""In-process tests of the server's pure parts: positions, configuration, policy, chunking,
highlights, comment syntax and the llm-ls parameter mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types as T
from pygls.workspace import PositionCodec, Workspace

from lsp_server.checker import group
from lsp_server.code_actions import comment
from lsp_server.config import ConfigError, ConfigLayers
from lsp_server.documents import DocumentText, language_of, use_lsp_lines
from lsp_server.highlights import Highlight, HighlightStore, diagnostics
from lsp_server.llmls import settings_from
from lsp_server.policy import Allowlist, Policy
from membership import Match

UTF16 = PositionCodec(T.PositionEncodingKind.Utf16)
UTF8 = PositionCodec(T.PositionEncodingKind.Utf8)


def pos(line: int, character: int) -> T.Position:
    return T.Position(line=line, character=character)


def make_match(repo: str | None = "acme/x", license: str | None = "MIT", start: int = 0) -> Match:
    return Match.model_validate(
        {
            "kind": "exact",
            "score": 0.9,
            "source": {"repo": repo, "path": "a.py", "license": license, "url": None},
            "source_span": {"start_line": 3, "end_line": 9},
            "query_span": {
                "start_line": 1,
                "end_line": 2,
                "start_char": start,
                "end_char": start + 200,
            },
            "matched_chars": 200,
        }
    )


class TestPositions:
    def test_astral_characters_count_two_utf16_units(self) -> None:
        doc = DocumentText.of('x = "😋"\ny = 1\n', UTF16)
        # the closing quote: str index 6, UTF-16 column 7 (the emoji is a surrogate pair)
        assert doc.offset_at(pos(0, 7)) == 6
        assert doc.text[doc.offset_at(pos(0, 7))] == '"'
        assert doc.position_at(6) == pos(0, 7)
        assert doc.position_at(doc.text.index("y")) == pos(1, 0)

    def test_utf8_encoding_counts_bytes(self) -> None:
        doc = DocumentText.of("é😋z", UTF8)
        assert doc.offset_at(pos(0, 6)) == 2
        assert doc.position_at(2) == pos(0, 6)

    def test_round_trip_every_offset(self) -> None:
        text = "a🎉b\r\nñ👩‍👩‍👧c\rlast𝔸"
        doc = DocumentText.of(text, UTF16)
        for off in range(len(text) + 1):
            if text[off - 1 : off + 1] == "\r\n":
                continue  # inside a line break: maps to the end of the line
            assert doc.offset_at(doc.position_at(off)) == off

    def test_positions_past_the_end_are_clamped(self) -> None:
        doc = DocumentText.of("ab\ncd", UTF16)
        assert doc.offset_at(pos(0, 99)) == 2  # end of line 0, not into line 1
        assert doc.offset_at(pos(1, 99)) == 5
        assert doc.offset_at(pos(42, 3)) == 5
        assert doc.position_at(999) == pos(1, 2)

    def test_empty_document(self) -> None:
        doc = DocumentText.of("", UTF16)
        assert doc.offset_at(pos(0, 0)) == 0
        assert doc.offset_at(pos(3, 7)) == 0
        assert doc.end_position() == pos(0, 0)

    def test_language_guess_for_untitled_and_files(self) -> None:
        assert language_of("untitled:Untitled-1", None) == "unknown"
        assert language_of("file:///a/b.rs", None) == "rust"
        assert language_of("file:///a/b.rs", "python") == "python"


@settings(deadline=None, max_examples=200)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab\n\r\u2028\u2029\x85\x0b\x0c\x1c😀")), max_size=40),
    edit=st.tuples(st.integers(0, 40), st.integers(0, 40), st.text(alphabet="xy\n\u2028", max_size=3)),
)
def test_workspace_edits_match_lsp_positions(text: str, edit: tuple[int, int, str]) -> None:
    """An incremental edit through the server's workspace changes exactly the text between the
    two offsets that LSP's line rules give (pygls alone splits at U+2028 and more)."""
    a, b, new = edit
    doc = DocumentText.of(text, UTF16)
    a, b = sorted((min(a, len(text)), min(b, len(text))))
    if "\r\n" in (text[a - 1 : a + 1], text[b - 1 : b + 1]):
        return  # inside a CRLF pair: no position names it
    ws = Workspace(None, position_encoding=T.PositionEncodingKind.Utf16)
    use_lsp_lines(ws)
    ws.put_text_document(T.TextDocumentItem(uri="file:///p.py", language_id="python", version=1, text=text))
    change = T.TextDocumentContentChangePartial(range=doc.range_of(a, b), text=new)
    ws.update_text_document(T.VersionedTextDocumentIdentifier(uri="file:///p.py", version=2), change)
    assert ws.get_text_document("file:///p.py").source == text[:a] + new + text[b:]


class TestConfig:
    def test_defaults_env_and_camel_case_layers(self) -> None:
        layers = ConfigLayers({"STACKLENS_INDEX": "/idx", "STACKLENS_POLICY": "block"})
        assert layers.current.membership.index == "/idx"
        assert layers.current.membership.policy == "block"
        cfg = layers.update("init", {"stacklens": {"membership": {"minChars": 80}, "debounceMs": 5}})
        assert cfg.membership.min_chars == 80 and cfg.membership.index == "/idx"
        assert cfg.debounce_ms == 5
        cfg = layers.update("pull", {"membership": {"policy": "warn"}})
        assert cfg.membership.policy == "warn" and cfg.membership.min_chars == 80

    def test_bad_value_is_rejected_and_previous_settings_kept(self) -> None:
        layers = ConfigLayers({})
        layers.update("init", {"debounceMs": 10})
        with pytest.raises(ConfigError, match=r"stacklens\.membership\.policy"):
            layers.update("push", {"membership": {"policy": "sometimes"}})
        assert layers.current.debounce_ms == 10
        with pytest.raises(ConfigError, match=r"unknownKey|unknown_key"):
            layers.update("push", {"unknownKey": 1})

    def test_bad_environment_is_reported_not_fatal(self) -> None:
        layers = ConfigLayers({"STACKLENS_POLICY": "maybe"})
        assert layers.env_error and "policy" in layers.env_error
        assert layers.current.membership.policy == "warn"

    def test_completion_section_is_passed_through(self) -> None:
        layers = ConfigLayers({"STACKLENS_BACKEND": "openai", "STACKLENS_COMPLETION_URL": "http://h"})
        assert layers.current.completion == {"backend": "openai", "url": "http://h"}
        cfg = layers.update("init", {"completion": {"backend": "tgi", "maxNewTokens": 9}})
        assert cfg.completion == {"backend": "tgi", "url": "http://h", "max_new_tokens": 9}

    def test_removed_key_goes_back_to_its_default(self) -> None:
        layers = ConfigLayers({"STACKLENS_MIN_CHARS": "90"})
        layers.update("init", {"debounceMs": 5, "maxCandidates": 4, "membership": {"minChars": 70}})
        layers.update("push", {"maxCandidates": 6, "logLevel": "debug", "membership": {"policy": "block"}})
        # The pulled section no longer has the pushed keys: they were removed, not kept from the push.
        cfg = layers.update("pull", {"debounceMs": 7})
        assert cfg.debounce_ms == 7 and cfg.log_level is None and cfg.membership.policy == "warn"
        assert cfg.max_candidates == 4  # never in a section: initializationOptions still apply
        # What the VS Code extension sends for a cleared setting: null, which must not bring back the
        # (stale) initializationOptions value but the default: the environment, else built in.
        cfg = layers.update("push", {"maxCandidates": None, "membership": {"minChars": None}})
        assert cfg.max_candidates == 3 and cfg.membership.min_chars == 90 and cfg.debounce_ms == 5

    def test_settings_sent_twice_change_nothing(self) -> None:
        """VS Code sends its settings as initializationOptions and again as the section, nulls for
        unset keys included: a different completion dict would load the model a second time."""
        vscode = {
            "completion": {"backend": "transformers", "model": "/m", "url": None, "template": None},
            "membership": {"index": None, "policy": "warn"},
        }
        layers = ConfigLayers({})
        first = layers.update("init", vscode)
        assert first.completion == {"backend": "transformers", "model": "/m"}
        assert layers.update("pull", vscode) == first

    def test_diagnostic_severity_setting(self) -> None:
        layers = ConfigLayers({})
        cfg = layers.current
        assert (cfg.diagnostic_severity, cfg.blocked_diagnostic_severity) == ("warning", "error")
        cfg = layers.update(
            "init", {"diagnosticSeverity": "hint", "blockedDiagnosticSeverity": "information"}
        )
        assert (cfg.diagnostic_severity, cfg.blocked_diagnostic_severity) == ("hint", "information")
        with pytest.raises(ConfigError, match=r"stacklens\.diagnostic_severity|diagnosticSeverity"):
            layers.update("push", {"diagnosticSeverity": "loud"})


class TestPolicy:
    def test_licence_policy(self, tmp_path: Path) -> None:
        layers = ConfigLayers({})
        policy = Policy(layers.current.membership, Allowlist(tmp_path))
        assert policy.license_action("GPL-3.0") == "block"
        assert policy.license_action("agpl-3.0-only") == "block"
        assert policy.license_action("MIT") == "warn"
        assert policy.action([make_match(license="MIT")]) == "warn"
        assert policy.action([make_match(license="MIT"), make_match(license="GPL-2.0")]) == "block"
        assert policy.action([]) == "off"

    def test_global_block_and_off(self, tmp_path: Path) -> None:
        layers = ConfigLayers({})
        cfg = layers.update("init", {"membership": {"policy": "block"}}).membership
        assert Policy(cfg, Allowlist(tmp_path)).action([make_match(license="MIT")]) == "block"
        cfg = layers.update("init", {"membership": {"policy": "off"}}).membership
        assert Policy(cfg, Allowlist(tmp_path)).action([make_match(license="GPL-3.0")]) == "off"

    def test_allowlist_persists_and_hides(self, tmp_path: Path) -> None:
        allow = Allowlist(tmp_path)
        m = make_match(repo="me/mine")
        allow.allow_repo("me/mine")
        allow.ignore(str(tmp_path / "src" / "f.py"), make_match(repo="other/x"))
        again = Allowlist(tmp_path)
        assert again.hides(None, m)
        assert again.hides(str(tmp_path / "src" / "f.py"), make_match(repo="other/x"))
        assert not again.hides(str(tmp_path / "g.py"), make_match(repo="other/x"))
        cfg = ConfigLayers({}).update("init", {"membership": {"licenseAllow": ["MIT"]}}).membership
        policy = Policy(cfg, again)
        assert policy.reportable([make_match(repo="z/z", license="MIT")], None) == []

    def test_ignore_common_above_from_the_editor(self, tmp_path: Path) -> None:
        cfg = ConfigLayers({}).update("push", {"membership": {"ignoreCommonAbove": 10}}).membership
        common = make_match(license="GPL-3.0").model_copy(update={"occurrences": 11})
        policy = Policy(cfg, Allowlist(tmp_path))
        assert policy.reportable([common], None) == [] and policy.action([common]) == "off"
        assert "boilerplate" in policy.decide(common).reason
        with pytest.raises(ConfigError, match=r"ignore_common_above|ignoreCommonAbove"):
            ConfigLayers({}).update("push", {"membership": {"ignoreCommonAbove": -1}})

    def test_corrupt_allowlist_is_ignored(self, tmp_path: Path) -> None:
        (tmp_path / ".stacklens").mkdir()
        (tmp_path / ".stacklens" / "allowlist.json").write_text("{not json")
        assert Allowlist(tmp_path).repos == set()


class TestRegionsAndHighlights:
    def test_group_merges_overlapping_spans_and_duplicate_sources(self) -> None:
        a, b = make_match(repo="r/a"), make_match(repo="r/b")
        regions = group([(0, 100, a), (50, 150, b), (60, 90, a), (400, 500, a)])
        assert [(r.start, r.end) for r in regions] == [(0, 150), (400, 500)]
        assert {m.source.repo for m in regions[0].matches} == {"r/a", "r/b"}

    def test_highlights_follow_edits(self) -> None:
        store = HighlightStore()
        text = "header\nCOPIED CODE\nfooter\n"
        s = text.index("COPIED")
        store.add("u", Highlight(s, s + 11, "COPIED CODE", [make_match()], "scan"))
        assert not store.relocate("u", text)
        moved = "new line\n" + text
        assert store.relocate("u", moved)
        h = store.get("u")[0]
        assert moved[h.start : h.end] == "COPIED CODE"
        assert store.relocate("u", moved.replace("COPIED", "MINE"))
        assert store.get("u") == []


def test_match_diagnostics_use_the_configured_severity() -> None:
    doc = DocumentText.of("warned code here\nblocked code here\n", UTF16)
    store = HighlightStore()
    store.add("u", Highlight(0, 16, doc.text[0:16], [make_match(license="MIT")], "scan"))
    store.add("u", Highlight(17, 34, doc.text[17:34], [make_match(license="GPL-3.0")], "scan", True))
    default = diagnostics(store, "u", doc)
    assert [d.severity for d in default] == [T.DiagnosticSeverity.Warning, T.DiagnosticSeverity.Error]
    assert [d.data["blocked"] for d in default] == [False, True]
    hints = diagnostics(store, "u", doc, "hint", "hint")
    assert [d.severity for d in hints] == [T.DiagnosticSeverity.Hint, T.DiagnosticSeverity.Hint]
    assert [d.data["blocked"] for d in hints] == [False, True]
    mixed = diagnostics(store, "u", doc, "information", "warning")
    assert [d.severity for d in mixed] == [T.DiagnosticSeverity.Information, T.DiagnosticSeverity.Warning]


def test_comment_syntax() -> None:
    assert comment("python", "x") == "# x"
    assert comment("typescript", "x") == "// x"
    assert comment("lua", "x") == "-- x"
    assert comment("html", "x") == "<!-- x -->"
    assert comment("emacs-lisp", "x") == ";; x"


def test_llm_ls_params_map_to_completion_settings() -> None:
    params = {
        "backend": "openai",
        "model": "m",
        "url": "http://127.0.0.1:1",
        "fim": {"enabled": True, "prefix": "<P>", "middle": "<M>", "suffix": "<S>"},
        "tokensToClear": ["<EOT>"],
        "contextWindow": 1024,
        "requestBody": {"parameters": {"max_new_tokens": 40, "temperature": 0.1}},
        "tokenizerConfig": {"path": "/tok"},
        "ide": "vscode",
    }
    s = settings_from(params)
    assert s == {
        "backend": "openai",
        "model": "m",
        "url": "http://127.0.0.1:1",
        "context_window": 1024,
        "template": {
            "fim_prefix": "<P>",
            "fim_suffix": "<S>",
            "fim_middle": "<M>",
            "stop": ["<EOT>"],
        },
        "tokenizer": "/tok",
        "max_new_tokens": 40,
        "temperature": 0.1,
    }
    from completion.settings import load_settings

    assert load_settings(s).backend == "openai"  # accepted by the engine's own validation
    assert settings_from({"backend": "nonsense"}) is None


def test_llm_ls_engines_get_the_servers_tuning_but_not_its_model_url_or_token() -> None:
    from lsp_server.config import has_backend
    from lsp_server.engines import client_settings

    server = {
        "backend": "stacklens",
        "url": "http://gpu:8000",
        "api_token": "secret",
        "timeout_s": 30,
        "retries": 0,
    }
    request = settings_from({"backend": "tgi", "url": "http://other:8080", "model": "m"})
    assert request is not None
    merged = client_settings(server, request)
    assert merged["url"] == "http://other:8080" and merged["backend"] == "tgi"
    assert "api_token" not in merged  # the server's token never goes to a URL the client chose
    assert merged["timeout_s"] == 30 and merged["retries"] == 0
    assert not has_backend({"timeout_s": 30}) and has_backend(server) and not has_backend(None)
