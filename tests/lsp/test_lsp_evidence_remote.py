"""Evidence when the language server checks through a membership service (`membership.url`):
the service aligns (``POST /v1/evidence``) and the hover and diff show its rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import CORPUS_FILE, REPO, server_command
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_lsp_server import open_doc, wait_diagnostics

from index.store import EmbeddedIndex
from membership.service import create_app, running

pytestmark = pytest.mark.integration
CONFIG = ClientServerConfig(server_command=server_command())
RENAMED = CORPUS_FILE.replace("payload", "data")


@pytest.fixture(scope="module")
def service_url(lsp_index: Path) -> Iterator[str]:
    with running(create_app(lambda: EmbeddedIndex(lsp_index))) as url:
        yield url


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(lsp_client: LanguageClient, service_url: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("remote-ws")
    membership = {"url": service_url, "backgroundDebounceMs": 0, "minChars": 100}
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            initialization_options={"membership": membership, "debounceMs": 0},
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_hover_and_evidence_through_the_service(client: LanguageClient):
    uri = (client.root / "remote.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "import os\n\n" + RENAMED)
    diags = await wait_diagnostics(client, uri)
    assert diags and diags[0].data["matches"][0]["source"]["repo"] == REPO
    hover = await client.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=uri), position=diags[0].range.start)
    )
    assert hover is not None
    value = hover.contents.value  # type: ignore[union-attr]
    assert "**Side by side**" in value and "renamed: `payload` → `data`" in value
    assert "source text read from the corpus file" in value  # the service read it
    data = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(
            command="stacklens.evidence", arguments=[{"uri": uri, "id": diags[0].data["id"]}]
        )
    )
    assert data["evidence"]["renames"] == {"payload": "data"}
    first = data["evidence"]["rows"][0]
    assert first["query"]["line"] - first["source"]["line"] == 2  # in this file's lines, not the snippet's
    assert "self.payload = payload" in data["source"]["text"]
