"""The membership gate in front of a live model: fail closed when the check cannot run (no
suggestion, one message), and the `unknownLicense` action for sources without a licence."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import RING_FILE, server_command
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.integration
RING_HEAD = RING_FILE.splitlines(keepends=True)[0]
UNLICENSED_REPO = "acme/ring-unlicensed"
UNAVAILABLE = "membership check unavailable: no suggestions are shown"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def unlicensed_index(lsp_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ring.py (which the tiny model reproduces) under a repository that names no licence."""
    from index.builder import build
    from index.config import BuildLimits
    from index.sources import DirectorySource

    path = tmp_path_factory.mktemp("unlicensed") / "idx"
    build(
        path,
        [DirectorySource(lsp_corpus.parent / "ring", BuildLimits(), repo=UNLICENSED_REPO)],
        progress=False,
    )
    return path


@pytest_lsp.fixture(config=ClientServerConfig(server_command=server_command()), scope="module")
async def client(lsp_client: LanguageClient, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """A live in-process model; the membership service is a port nobody listens on."""
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=tmp_path_factory.mktemp("gate").as_uri(),
            initialization_options={
                "debounceMs": 0,
                "completion": {
                    "backend": "transformers",
                    "model": str(tiny_model),
                    "device": "cpu",
                    "temperature": 0,
                    "maxNewTokens": 128,
                    "crossfileMaxSnippets": 0,
                },
                "membership": {"url": f"http://127.0.0.1:{closed_port()}", "backgroundDebounceMs": 0},
            },
        )
    )
    yield
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, uri: str, text: str) -> None:
    client.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )


async def complete(client: LanguageClient, uri: str) -> list[T.InlineCompletionItem]:
    result = await client.text_document_inline_completion_async(
        T.InlineCompletionParams(
            text_document=T.TextDocumentIdentifier(uri=uri),
            position=T.Position(line=1, character=0),
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
        )
    )
    return list(result.items if isinstance(result, T.InlineCompletionList) else result or [])


async def configure(client: LanguageClient, membership: dict[str, Any], done: Any) -> dict[str, Any]:
    """Push a membership layer and wait until `stacklens.status` shows it applied."""
    client.workspace_did_change_configuration(
        T.DidChangeConfigurationParams(settings={"stacklens": {"membership": membership}})
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        status = await client.workspace_execute_command_async(
            T.ExecuteCommandParams(command="stacklens.status", arguments=[{"quiet": True}])
        )
        if done(status):
            return status
        assert loop.time() < deadline, f"the setting {membership} was not applied: {status}"
        await asyncio.sleep(0.05)


def gate_messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if UNAVAILABLE in m.message]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_dead_membership_service_shows_no_suggestion_and_one_message(client: LanguageClient):
    uri = "file:///gate/ring.py"
    open_doc(client, uri, RING_HEAD)
    for _ in range(3):
        assert await complete(client, uri) == []
    # A message is sent before the answer to the request that caused it (one ordered stream),
    # so all of them are here: one, however many requests failed.
    about_membership = [m for m in client.messages if "membership" in m.message]
    assert [m.message for m in about_membership] == gate_messages(client)[:1], [
        m.message for m in client.messages
    ]
    assert about_membership[0].type == T.MessageType.Error


@pytest.mark.asyncio(loop_scope="module")
async def test_unknown_license_action(client: LanguageClient, unlicensed_index: Path):
    """The same model and document once the index answers: the suggestion was withheld only
    because it could not be checked. Then `unknownLicense` decides what an unlicensed match does."""
    uri = "file:///gate/unlicensed.py"
    open_doc(client, uri, RING_HEAD)
    # A pushed layer replaces the previous push whole: each one names the index again.
    layer = {"url": None, "index": str(unlicensed_index)}
    await configure(client, layer, lambda s: s["membership"].startswith("index "))
    items = await complete(client, uri)
    assert items and "ring_buffer_items" in text(items[0]), "the live model suggests ring.py"
    matches = items[0].command.arguments[0]["matches"]  # type: ignore[union-attr,index]
    assert matches and matches[0]["source"]["repo"] == UNLICENSED_REPO
    assert matches[0]["source"]["license"] is None  # warn, the default: shown with its match

    await configure(
        client, {**layer, "unknownLicense": "block"}, lambda s: s["membership"].startswith("index ")
    )
    await _until_blocked(client, uri)

    await configure(
        client, {**layer, "unknownLicense": "off"}, lambda s: s["membership"].startswith("index ")
    )
    items = await _until_shown(client, uri)
    assert items[0].command is None or not items[0].command.arguments[0]["matches"]  # type: ignore[index]
    assert len(gate_messages(client)) == 1  # nothing new from the gate once it could check


def text(item: T.InlineCompletionItem) -> str:
    assert isinstance(item.insert_text, str), "stacklens sends plain text, never a snippet"
    return item.insert_text


async def _until_shown(client: LanguageClient, uri: str) -> list[T.InlineCompletionItem]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        items = await complete(client, uri)
        if items and "ring_buffer_items" in text(items[0]):
            return items
        assert loop.time() < deadline, "unknownLicense off never let the unlicensed suggestion through"
        await asyncio.sleep(0.1)


async def _until_blocked(client: LanguageClient, uri: str) -> None:
    # `stacklens.status` does not list unknownLicense; a completion is the signal that it applied.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        items = await complete(client, uri)
        if all("ring_buffer_items" not in text(i) for i in items):
            return
        assert loop.time() < deadline, "unknownLicense block never dropped the unlicensed suggestion"
        await asyncio.sleep(0.1)
