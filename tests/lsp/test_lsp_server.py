"""The real server process driven by pytest-lsp with VS Code's client capabilities."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import CORPUS_FILE, REPO, RING_FILE, RING_REPO, SOURCE_URL, server_command
from lsprotocol import types as T
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.integration
CONFIG = ClientServerConfig(server_command=server_command())
SERVER_CAPABILITIES: list[T.ServerCapabilities] = []


def options(lsp_index: Path, tiny_model: Path | None, **extra: Any) -> dict[str, Any]:
    """initializationOptions as an editor would send them (camelCase)."""
    completion = None
    if tiny_model:
        completion = {
            "backend": "transformers",
            "model": str(tiny_model),
            "device": "cpu",
            "temperature": 0,
            "maxNewTokens": 128,
            "crossfileMaxSnippets": 0,  # the tiny model saw no cross-file context in training
        }
    membership = {"index": str(lsp_index), "backgroundDebounceMs": 0, "minChars": 100}
    return {"membership": membership, "debounceMs": 0, "completion": completion, **extra}


def open_doc(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )


async def wait_diagnostics(client: LanguageClient, uri: str, count: int = 1, timeout: float = 30):
    """Diagnostics for ``uri`` once at least ``count`` arrived (or whatever is there at timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        diags = client.diagnostics.get(uri, [])
        if len(diags) >= count:
            return diags
        await asyncio.sleep(0.05)
    return client.diagnostics.get(uri, [])


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: LanguageClient, lsp_index: Path, tiny_model: Path, workspace: Path):
    # What the workspace/configuration pull (section "stacklens") answers, as VS Code would.
    lsp_client.set_configuration({"maxCandidates": 2}, section="stacklens")

    result = await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            initialization_options=options(lsp_index, tiny_model),
        )
    )
    SERVER_CAPABILITIES.append(result.capabilities)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_capabilities_and_layered_configuration(client: LanguageClient) -> None:
    caps = SERVER_CAPABILITIES[0]
    assert caps.inline_completion_provider is not None  # VS Code only asks when advertised
    sync = caps.text_document_sync
    assert isinstance(sync, T.TextDocumentSyncOptions)
    assert sync.change == T.TextDocumentSyncKind.Incremental
    assert caps.hover_provider and caps.code_action_provider
    assert caps.execute_command_provider is not None
    assert {"stacklens.searchSelection", "stacklens.status", "stacklens.accept"} <= set(
        caps.execute_command_provider.commands
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20  # the pull runs after `initialized`, concurrently with us
    while True:
        status = await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="stacklens.status")
        )
        if status["maxCandidates"] == 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status["membership"].startswith("index ")  # from initializationOptions
    assert status["maxCandidates"] == 2  # from the workspace/configuration pull
    assert status["debounceMs"] == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_background_scan_highlights_copied_code(client: LanguageClient, workspace: Path):
    uri = (workspace / "copied.py").as_uri()
    text = "# intro 😀 emoji first\nimport os\n\n" + CORPUS_FILE
    open_doc(client, uri, text)
    diags = await wait_diagnostics(client, uri)
    assert diags, "a copy of the corpus file must be highlighted"
    d = diags[0]
    assert d.source == "stacklens"
    assert f"{REPO}/interval_tree.py" in d.message and "GPL-3.0" in d.message
    assert d.code_description is not None and d.code_description.href == SOURCE_URL
    assert d.data["matches"][0]["source"]["repo"] == REPO
    # the range starts inside the copied part, after the 3 intro lines
    assert d.range.start.line >= 3
    # Hover over the highlighted range names the source, licence and link.
    hover = await client.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=uri), position=d.range.start)
    )
    assert hover is not None
    value = hover.contents.value  # type: ignore[union-attr]
    assert SOURCE_URL in value and "GPL-3.0" in value and "score" in value
    # Code actions: open source, attribution comment, ignore, allow-list.
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=uri),
            range=d.range,
            context=T.CodeActionContext(diagnostics=[d]),
        )
    )
    titles = [a.title for a in actions or []]
    assert any("open source" in t for t in titles)
    assert any(f"allow-list repository {REPO}" in t for t in titles)
    attribution = next(a for a in actions if "attribution" in a.title)
    edit = attribution.edit.changes[uri][0]  # type: ignore[union-attr,index]
    assert edit.new_text.strip().startswith("# Adapted from acme/trees/interval_tree.py")
    assert SOURCE_URL in edit.new_text


def utf16_position(text: str, offset: int) -> T.Position:
    """The LSP position (UTF-16 code units, lines broken at CRLF, CR or LF) of a str offset."""
    line_start, line = 0, 0
    i = 0
    while i < offset:
        if text[i] == "\r" or text[i] == "\n":
            i += 2 if text[i : i + 2] == "\r\n" else 1
            line_start, line = i, line + 1
        else:
            i += 1
    return T.Position(line=line, character=len(text[line_start:offset].encode("utf-16-le")) // 2)


@pytest.mark.asyncio(loop_scope="module")
async def test_diagnostic_range_counts_utf16_units_on_lines_with_astral_characters_and_crlf(
    client: LanguageClient, workspace: Path, lsp_index: Path
):
    """The copied code starts after astral characters on its own line, and every line ends in
    CRLF: the range must be in UTF-16 code units (an emoji is two) on the right lines."""
    from index.store import EmbeddedIndex
    from membership import Matcher

    uri = (workspace / "astral_crlf.py").as_uri()
    # Code of our own, with astral characters, on the line where the copy begins: longer than
    # the reach of a match past its hits, so the range starts in the middle of that line.
    ours = "q = ['\U0001f600\U0001f600\U0001d539', '\U0001f600', '\U0001d538\U0001d539', zeta(1), eta(2), "
    ours += "theta(3), iota(4), kappa(5), lam(6), mu(7)]; "
    copied = CORPUS_FILE[CORPUS_FILE.index("root.left = interval_insert") :]
    text = "# \U0001f600\U0001d538 notes\r\n" + ours + copied.replace("\n", "\r\n") + "z = '\U0001f600'\r\n"
    open_doc(client, uri, text)
    diags = await wait_diagnostics(client, uri)
    assert len(diags) == 1, diags
    with EmbeddedIndex(lsp_index) as idx:
        found = Matcher(idx).check(text, "python", "astral_crlf.py")
    assert found and all(m.source.path == "interval_tree.py" for m in found)
    start = min(m.query_span.start_char for m in found)
    end = max(m.query_span.end_char for m in found)
    expected = T.Range(start=utf16_position(text, start), end=utf16_position(text, end))
    line_start = text.index("q = ")
    assert expected.start.line == 1 and expected.start.character > start - line_start, "UTF-16 differs here"
    assert diags[0].range == expected


@pytest.mark.asyncio(loop_scope="module")
async def test_incremental_sync_in_utf16_with_astral_characters(client: LanguageClient, workspace):
    uri = (workspace / "emoji.py").as_uri()
    open_doc(client, uri, "a = '😀'\nb = '𝔸𝔹'\n")
    # After the emoji: UTF-16 column 7 (the emoji is two code units), str index 6.
    insert(client, uri, 2, T.Position(line=0, character=7), "X")
    insert(client, uri, 3, T.Position(line=1, character=9), "Y")  # between 𝔹 and the quote
    whole = T.Range(start=T.Position(line=0, character=0), end=T.Position(line=2, character=0))
    result = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"uri": uri, "range": whole}])
    )
    assert result["query"] == "a = '😀X'\nb = '𝔸𝔹Y'\n"
    inner = T.Range(start=T.Position(line=1, character=5), end=T.Position(line=1, character=9))
    result = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"uri": uri, "range": inner}])
    )
    assert result["query"] == "𝔸𝔹"


@pytest.mark.asyncio(loop_scope="module")
async def test_edits_after_unicode_line_separators_land_on_the_right_line(client: LanguageClient, workspace):
    """LSP breaks lines at CR, LF and CRLF only: U+2028, U+0085 and form feeds stay inside a line
    (pygls's own documents split there, and put the edit below on the wrong line)."""
    uri = (workspace / "separators.py").as_uri()
    open_doc(client, uri, "a = '\u2028\x85'\n\x0cb = 1\r\nc = 2\n")
    insert(client, uri, 2, T.Position(line=1, character=1), "X")
    insert(client, uri, 3, T.Position(line=2, character=0), "Y")
    whole = T.Range(start=T.Position(line=0, character=0), end=T.Position(line=3, character=0))
    result = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"uri": uri, "range": whole}])
    )
    assert result["query"] == "a = '\u2028\x85'\n\x0cXb = 1\r\nYc = 2\n"


@pytest.mark.asyncio(loop_scope="module")
async def test_search_selection_command(client: LanguageClient, workspace: Path):
    result = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(
            command="stacklens.searchSelection", arguments=[{"text": CORPUS_FILE[200:800]}]
        )
    )
    assert result["matches"][0]["source"]["path"] == "interval_tree.py"
    none = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"text": "x = 1\n"}])
    )
    assert none["matches"] == []


def inline_params(uri: str, line: int, character: int, invoked: bool = True):
    kind = T.InlineCompletionTriggerKind.Invoked if invoked else T.InlineCompletionTriggerKind.Automatic
    return T.InlineCompletionParams(
        text_document=T.TextDocumentIdentifier(uri=uri),
        position=T.Position(line=line, character=character),
        context=T.InlineCompletionContext(trigger_kind=kind),
    )


def insert(client: LanguageClient, uri: str, version: int, at: T.Position, text: str) -> None:
    """What VS Code does when the user accepts ghost text: an incremental didChange."""
    client.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[T.TextDocumentContentChangePartial(range=T.Range(start=at, end=at), text=text)],
        )
    )


RING_HEAD = RING_FILE.splitlines(keepends=True)[0]


@pytest.mark.asyncio(loop_scope="module")
async def test_inline_completion_carries_match_and_highlights_on_accept(
    client: LanguageClient, workspace: Path
):
    uri = (workspace / "ring_copy.py").as_uri()
    text = RING_HEAD
    open_doc(client, uri, text)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    items = result.items if isinstance(result, T.InlineCompletionList) else result
    assert items, "the tiny model must suggest something"
    item = items[0]
    assert isinstance(item.insert_text, str) and "ring_buffer_items" in item.insert_text  # memorised
    assert item.command is not None and item.command.command == "stacklens.accept"
    args = item.command.arguments[0]
    assert args["matches"], "the suggestion is in the index: its match rides on the command"
    assert args["matches"][0]["source"]["repo"] == RING_REPO
    assert args["matches"][0]["source"]["license"] == "MIT"  # MIT: warn, not block
    # Accept: the edit, then the item's command, as VS Code runs them.
    at = T.Position(line=1, character=0)
    insert(client, uri, 2, at, item.insert_text)
    await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    diags = await wait_diagnostics(client, uri)
    assert diags and "acme/ring/ring.py" in diags[0].message and "(MIT)" in diags[0].message
    assert diags[0].range.start.line >= 1  # inside the inserted text, not the context before it
    assert diags[0].code_description.href == "https://example.com/acme/ring/ring.py"
    assert diags[0].data["matches"][0]["source"]["path"] == "ring.py"


@pytest.mark.asyncio(loop_scope="module")
async def test_accept_uses_what_the_server_showed_not_what_the_client_sends(
    client: LanguageClient, workspace: Path
):
    """The matches on an item's command inform the client; accepting it uses the server's record,
    so forged or altered arguments cannot plant a highlight or an audit row."""
    uri = (workspace / "ring_forged.py").as_uri()
    open_doc(client, uri, RING_HEAD)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    items = result.items if isinstance(result, T.InlineCompletionList) else result
    assert items and items[0].command is not None and items[0].command.arguments
    shown = items[0].command.arguments[0]
    assert shown["matches"], "the suggestion must carry a match for this test to mean anything"
    for forged in (
        {**shown, "requestId": "never-shown"},
        {**shown, "index": len(items) + 5},
        {**shown, "index": "0"},
    ):
        answer = await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="stacklens.accept", arguments=[forged])
        )
        assert answer == {"highlighted": False}, forged
    insert(client, uri, 2, T.Position(line=1, character=0), shown["text"])
    answer = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.accept", arguments=[{**shown, "matches": []}])
    )
    assert answer == {"highlighted": True}  # the server's matches, though the client sent none


@pytest.mark.asyncio(loop_scope="module")
async def test_accept_command_before_the_edit_still_highlights(client: LanguageClient, workspace: Path):
    """Some clients run the item's command first and send the insertion after it."""
    uri = (workspace / "ring_command_first.py").as_uri()
    open_doc(client, uri, RING_HEAD)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    items = result.items if isinstance(result, T.InlineCompletionList) else result
    assert items and items[0].command is not None
    item = items[0]
    assert isinstance(item.insert_text, str)
    await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    insert(client, uri, 2, T.Position(line=1, character=0), item.insert_text)
    diags = await wait_diagnostics(client, uri)
    assert diags and "acme/ring/ring.py" in diags[0].message
    assert diags[0].range.start.line >= 1


@pytest.mark.asyncio(loop_scope="module")
async def test_block_policy_drops_matching_candidates(client: LanguageClient, workspace: Path):
    uri = (workspace / "ring_block.py").as_uri()
    open_doc(client, uri, RING_HEAD)

    async def suggestions() -> list[str]:
        result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
        items = result.items if isinstance(result, T.InlineCompletionList) else result
        return [i.insert_text for i in items or []]  # type: ignore[misc]

    # First the model is shown to suggest the MIT file here, so "nothing suggested" below is
    # the policy at work, not a model that generated nothing.
    assert any("ring_buffer_items" in t for t in await suggestions())
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"membership": {"licenseBlock": ["MIT"]}}})
    )
    await status_when(client, lambda s: s["licenseBlock"] == ["MIT"])
    assert all("ring_buffer_items" not in t for t in await suggestions())
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"membership": {"licenseBlock": ["GPL*"]}}})
    )
    await status_when(client, lambda s: s["licenseBlock"] == ["GPL*"])
    assert any("ring_buffer_items" in t for t in await suggestions())


@pytest.mark.asyncio(loop_scope="module")
async def test_llm_ls_protocol(client: LanguageClient, workspace: Path):
    uri = (workspace / "llmls.py").as_uri()
    open_doc(client, uri, RING_HEAD)
    params = {  # what llm-vscode 0.2.2 sends
        "position": {"line": 1, "character": 0},
        "textDocument": {"uri": uri},
        "model": "bigcode/starcoder",
        "backend": "huggingface",
        "url": None,
        "tokensToClear": ["<|endoftext|>"],
        "requestBody": {"parameters": {"max_new_tokens": 60, "temperature": 0.2, "top_p": 0.95}},
        "fim": {
            "enabled": True,
            "prefix": "<fim_prefix>",
            "middle": "<fim_middle>",
            "suffix": "<fim_suffix>",
        },
        "contextWindow": 2048,
        "tlsSkipVerifyInsecure": False,
        "ide": "vscode",
        "tokenizerConfig": None,
        "disableUrlPathCompletion": False,
    }
    result = await client.protocol.send_request_async("llm-ls/getCompletions", params)
    assert result.request_id
    text = result.completions[0].generated_text
    assert "ring_buffer_items" in text
    insert(client, uri, 2, T.Position(line=1, character=0), text)
    await client.protocol.send_request_async(
        "llm-ls/acceptCompletion",
        {"requestId": result.request_id, "acceptedCompletion": 0, "shownCompletions": [0]},
    )
    diags = await wait_diagnostics(client, uri)
    assert diags and "acme/ring/ring.py" in diags[0].message
    rejected = await client.protocol.send_request_async(
        "llm-ls/rejectCompletion", {"requestId": "nope", "shownCompletions": [0]}
    )
    assert rejected is None


@pytest.mark.asyncio(loop_scope="module")
async def test_any_request_order_and_odd_positions(client: LanguageClient, workspace: Path):
    # never opened, not on disk
    result = await client.text_document_inline_completion_async(
        inline_params((workspace / "missing.py").as_uri(), 0, 0)
    )
    assert result is not None and not (result.items if hasattr(result, "items") else result)
    # on disk but never opened: read from disk
    on_disk = workspace / "on_disk.py"
    on_disk.write_text(RING_HEAD, encoding="utf-8")
    result = await client.text_document_inline_completion_async(inline_params(on_disk.as_uri(), 1, 0))
    items = result.items if isinstance(result, T.InlineCompletionList) else result
    # The same suggestion as for an open document with that text (greedy decoding), which an
    # empty text would not give.
    twin = (workspace / "on_disk_twin.py").as_uri()
    open_doc(client, twin, RING_HEAD)
    opened = await client.text_document_inline_completion_async(inline_params(twin, 1, 0))
    expected = opened.items if isinstance(opened, T.InlineCompletionList) else opened
    assert items and expected and items[0].insert_text == expected[0].insert_text
    # past the end of the file and of the line; empty and untitled documents
    uri = (workspace / "short.py").as_uri()
    open_doc(client, uri, "x = 1")
    for line, char in ((0, 400), (50, 3)):
        assert await client.text_document_inline_completion_async(inline_params(uri, line, char)) is not None
    open_doc(client, "untitled:Untitled-1", "")
    assert (
        await client.text_document_inline_completion_async(inline_params("untitled:Untitled-1", 0, 0))
        is not None
    )
    hover = await client.text_document_hover_async(
        T.HoverParams(
            text_document=T.TextDocumentIdentifier(uri=uri),
            position=T.Position(line=9, character=9),
        )
    )
    assert hover is None


@pytest.mark.asyncio(loop_scope="module")
async def test_cancel_request_and_newer_request_cancel(client: LanguageClient, workspace: Path):
    uri = (workspace / "cancel.py").as_uri()
    open_doc(client, uri, RING_HEAD)
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"debounceMs": 5000}})
    )
    await status_when(client, lambda s: s["debounceMs"] == 5000)
    auto = inline_params(uri, 1, 0, invoked=False)
    first = asyncio.wrap_future(
        client.protocol.send_request(T.TEXT_DOCUMENT_INLINE_COMPLETION, auto, msg_id="first")
    )
    # The server reads messages in order: once a later request is answered, "first" is in its
    # 5 s debounce, and the cancel below reaches a request that is running.
    await status_when(client, lambda s: True)
    client.protocol.notify(T.CANCEL_REQUEST, T.CancelParams(id="first"))
    with pytest.raises(JsonRpcRequestCancelled):
        await first
    older = asyncio.wrap_future(
        client.protocol.send_request(T.TEXT_DOCUMENT_INLINE_COMPLETION, auto, msg_id="older")
    )
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"debounceMs": 0}})
    )
    await status_when(client, lambda s: s["debounceMs"] == 0)
    newer = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    with pytest.raises(JsonRpcRequestCancelled):
        await older
    assert newer is not None


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_setting_gets_a_message_not_a_crash(client: LanguageClient):
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"membership": {"policy": "sometimes"}}})
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    key = "stacklens.membership.policy"
    while loop.time() < deadline and not any(key in m.message for m in client.messages):
        await asyncio.sleep(0.05)
    msg = next(m for m in client.messages if key in m.message)
    assert msg.type == T.MessageType.Error and "stacklens.membership.policy" in msg.message
    status = await client.workspace_execute_command_async(T.ExecuteCommandParams(command="stacklens.status"))
    assert status["policy"] == "warn"  # the previous, valid value


async def diagnostics_cleared(client: LanguageClient, uri: str, timeout: float = 30) -> bool:
    """Whether the diagnostics of ``uri`` become empty within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while client.diagnostics.get(uri) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return not client.diagnostics.get(uri)


async def status_when(client: LanguageClient, done: Any, timeout: float = 10) -> dict[str, Any]:
    """`stacklens.status` once ``done(status)`` holds (or at timeout): settings apply asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="stacklens.status", arguments=[{"quiet": True}])
        )
        if done(status) or loop.time() > deadline:
            return status
        await asyncio.sleep(0.05)


async def severities_when(client: LanguageClient, uri: str, expected: list[T.DiagnosticSeverity]):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        found = [d.severity for d in client.diagnostics.get(uri, [])]
        if found == expected:
            break
        await asyncio.sleep(0.05)
    return client.diagnostics.get(uri, [])


@pytest.mark.asyncio(loop_scope="module")
async def test_diagnostic_severity_setting(client: LanguageClient, workspace: Path):
    """Editors that draw their own highlight (the VS Code extension) ask for hints."""
    uri = (workspace / "severity.py").as_uri()
    open_doc(client, uri, CORPUS_FILE + "\n\n" + RING_FILE)  # GPL (blocked licence), then MIT
    default = [T.DiagnosticSeverity.Error, T.DiagnosticSeverity.Warning]
    diags = await severities_when(client, uri, default)
    assert [d.severity for d in diags] == default
    assert [d.data["blocked"] for d in diags] == [True, False]
    settings = {"maxCandidates": 2, "diagnosticSeverity": "hint", "blockedDiagnosticSeverity": "information"}
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": settings})
    )
    chosen = [T.DiagnosticSeverity.Information, T.DiagnosticSeverity.Hint]
    diags = await severities_when(client, uri, chosen)  # re-published without a new scan
    assert [d.severity for d in diags] == chosen
    assert [d.data["blocked"] for d in diags] == [True, False]
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"maxCandidates": 2}})
    )
    assert [d.severity for d in await severities_when(client, uri, default)] == default


@pytest.mark.asyncio(loop_scope="module")
async def test_removed_setting_goes_back_to_its_default(client: LanguageClient):
    """No restart needed: a setting the user clears is reset, whichever way the change arrives."""
    # Pushed, then removed in a pull-model change (settings: null, then workspace/configuration).
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"maxCandidates": 5}})
    )
    assert (await status_when(client, lambda s: s["maxCandidates"] == 5))["maxCandidates"] == 5
    client.set_configuration({}, section="stacklens")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    assert (await status_when(client, lambda s: s["maxCandidates"] == 3))["maxCandidates"] == 3
    # initializationOptions set debounceMs 0; VS Code sends null once the setting is cleared.
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"debounceMs": None}})
    )
    assert (await status_when(client, lambda s: s["debounceMs"] == 100))["debounceMs"] == 100
    # Back to this module's configuration for the tests that follow.
    client.set_configuration({"maxCandidates": 2}, section="stacklens")
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings=None))
    status = await status_when(client, lambda s: s["maxCandidates"] == 2 and s["debounceMs"] == 0)
    assert (status["maxCandidates"], status["debounceMs"]) == (2, 0)


@pytest.mark.asyncio(loop_scope="module")
async def test_search_selection_quiet_shows_no_message(client: LanguageClient):
    """The VS Code extension shows the results in a quick pick: no server message on top of it."""
    text = CORPUS_FILE[200:800]

    def search_messages() -> list[str]:
        return [m.message for m in client.messages if "match(es) in the corpus" in m.message]

    before = len(search_messages())
    quiet = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"text": text, "quiet": True}])
    )
    assert quiet["matches"][0]["source"]["path"] == "interval_tree.py"
    loud = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.searchSelection", arguments=[{"text": text}])
    )
    assert loud["matches"] == quiet["matches"]
    # Messages and responses share one ordered stream: the quiet call's message would be here too.
    assert len(search_messages()) == before + 1
    assert f"best: {REPO}/interval_tree.py" in search_messages()[-1]


@pytest.mark.asyncio(loop_scope="module")
async def test_ignore_then_allowlist_are_persisted(client: LanguageClient, workspace: Path):
    """Runs last in this module: allow-listing the corpus repository hides every later match."""
    uri = (workspace / "allow.py").as_uri()
    open_doc(client, uri, CORPUS_FILE)
    diags = await wait_diagnostics(client, uri)
    assert diags
    ignored = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(
            command="stacklens.ignoreMatch", arguments=[{"uri": uri, "id": diags[0].data["id"]}]
        )
    )
    assert ignored is True
    # Before the command the file had a diagnostic: waiting for the empty publish is waiting for
    # the event itself, however slow the machine.
    assert await diagnostics_cleared(client, uri), client.diagnostics[uri]
    saved = json.loads((workspace / ".stacklens" / "allowlist.json").read_text())
    assert saved["ignored"][0]["file"] == "allow.py"
    assert saved["ignored"][0]["source"] == f"{REPO}/interval_tree.py"
    other = (workspace / "again.py").as_uri()
    open_doc(client, other, CORPUS_FILE)
    assert await wait_diagnostics(client, other)
    ok = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.allowRepository", arguments=[{"repo": REPO}])
    )
    assert ok is True
    assert await diagnostics_cleared(client, other), client.diagnostics[other]
    saved = json.loads((workspace / ".stacklens" / "allowlist.json").read_text())
    assert saved["repositories"] == [REPO]
