"""Evidence and the audit log through the real server, driven by pytest-lsp: the hover's
side-by-side section, the diff command, and the JSONL rows of shown and accepted suggestions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsp_helpers import CORPUS_FILE, REPO, RING_FILE, RING_REPO, server_command
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_lsp_server import inline_params, insert, open_doc, options, wait_diagnostics

pytestmark = pytest.mark.integration
CONFIG = ClientServerConfig(server_command=server_command())
AUDIT: list[Path] = []
RING_HEAD = RING_FILE.splitlines(keepends=True)[0]
# The corpus file with one parameter renamed and re-indented by two spaces: still a match.
RENAMED = "".join("  " + line if line.strip() else line for line in CORPUS_FILE.splitlines(True)).replace(
    "payload", "data"
)


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(
    lsp_client: LanguageClient, lsp_index: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
):
    root = tmp_path_factory.mktemp("evidence-ws")
    AUDIT.append(root / "logs" / "audit.jsonl")  # a directory that does not exist yet
    opts = options(lsp_index, tiny_model)
    opts["membership"]["auditLog"] = str(AUDIT[0])
    await lsp_client.initialize_session(
        T.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            initialization_options=opts,
        )
    )
    lsp_client.root = root  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


def _rows() -> list[dict[str, Any]]:
    path = AUDIT[0]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _rows_with(event: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        rows = [r for r in _rows() if r["event"] == event]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    return [r for r in _rows() if r["event"] == event]


@pytest.mark.asyncio(loop_scope="module")
async def test_hover_shows_the_evidence_side_by_side(client: LanguageClient):
    uri = (client.root / "renamed.py").as_uri()  # type: ignore[attr-defined]
    open_doc(client, uri, "import os\n\n" + RENAMED)
    diags = await wait_diagnostics(client, uri)
    assert diags and diags[0].data["matches"][0]["source"]["repo"] == REPO
    assert diags[0].data["matches"][0]["occurrences"] == 1
    hover = await client.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=uri), position=diags[0].range.start)
    )
    assert hover is not None
    value = hover.contents.value  # type: ignore[union-attr]
    assert "found in 1 file" in value
    assert "policy: **block**" in value and "GPL-3.0" in value  # the decision and its reason
    assert "**Side by side**" in value and "```text" in value
    assert "renamed: `payload` → `data`" in value
    assert "renamed only, 0 changed; source text read from the corpus file" in value
    # The side-by-side rows: each line of this file faces the source's line two lines up.
    table = value.split("```text\n")[1].split("```")[0].splitlines()
    numbered = [row.split("│") for row in table if row.split("│")[0].strip()[:1].isdigit()]
    assert numbered and all(int(a.split()[0]) - int(b.split()[0]) == 2 for a, b in numbered)
    assert any("~" in row for row in table)  # the renamed parameter is marked


@pytest.mark.asyncio(loop_scope="module")
async def test_diff_command_and_evidence_command(client: LanguageClient):
    uri = (client.root / "renamed.py").as_uri()  # type: ignore[attr-defined]
    diags = await wait_diagnostics(client, uri)
    hid = diags[0].data["id"]
    actions = await client.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=uri),
            range=diags[0].range,
            context=T.CodeActionContext(diagnostics=[diags[0]]),
        )
    )
    compare = next(a for a in actions or [] if a.title.startswith("stacklens: compare with the source"))
    # lsprotocol's client-side converter reads a CodeAction carrying a command as a Command whose
    # `command` is the nested object's repr: the wire holds {"command": "stacklens.showDiff", ...}.
    assert "'command': 'stacklens.showDiff'" in str(compare.command) and f"'id': {hid}" in str(
        compare.command
    )
    result = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.showDiff", arguments=[{"uri": uri, "id": hid}])
    )
    assert result["shown"] is True
    shown = client.shown_documents[-1]
    assert shown.uri.endswith(".diff") and shown.uri == Path(result["path"]).as_uri()
    diff = Path(result["path"]).read_text()
    assert "# renamed: payload -> data" in diff
    assert "\n-        self.payload = payload\n" in diff
    assert "\n+          self.data = data\n" in diff
    data = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.evidence", arguments=[{"uri": uri, "id": hid}])
    )
    assert data["source"]["origin"] == "file" and data["source"]["firstLine"] == 7
    assert data["source"]["text"].startswith("        self.payload = payload\n")
    assert data["query"]["firstLine"] == 9 and data["evidence"]["renames"] == {"payload": "data"}
    assert data["match"]["occurrences"] == 1
    missing = await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="stacklens.evidence", arguments=[{"uri": uri, "id": -1}])
    )
    assert missing == {"error": "no corpus match there"}


@pytest.mark.asyncio(loop_scope="module")
async def test_audit_log_rows_for_shown_and_accepted_suggestions(client: LanguageClient):
    root: Path = client.root  # type: ignore[attr-defined]
    uri = (root / "ring_audit.py").as_uri()
    open_doc(client, uri, RING_HEAD)
    result = await client.text_document_inline_completion_async(inline_params(uri, 1, 0))
    items = result.items if isinstance(result, T.InlineCompletionList) else result
    item = next(i for i in items if i.command and i.command.arguments[0]["matches"])
    shown = await _rows_with("shown")
    row = shown[-1]
    assert row["uri"] == uri and row["action"] == "warn"
    assert row["range"] == {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}
    m = row["matches"][0]
    assert m["source"]["repo"] == RING_REPO and m["occurrences"] >= 1
    assert m["decision"] == {"verdict": "warn", "reason": "licence MIT: reported"}
    assert "code" not in row, "the user's code is never logged unless auditLogIncludeCode is set"
    assert "ring_buffer_items" not in AUDIT[0].read_text()
    insert(client, uri, 2, T.Position(line=1, character=0), str(item.insert_text))
    await client.workspace_execute_command_async(
        T.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)  # type: ignore[union-attr]
    )
    accepted = (await _rows_with("accepted"))[-1]
    assert accepted["requestId"] == row["requestId"]
    assert accepted["range"]["start"] == {"line": 1, "character": 0}
    assert accepted["range"]["end"]["line"] > 1
    assert "code" not in accepted
    # Opting in to the code: the next rows carry the suggestion's text.
    opts = {"membership": {"auditLog": str(AUDIT[0]), "auditLogIncludeCode": True}}
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={"stacklens": opts}))
    await asyncio.sleep(0.5)
    other = (root / "ring_audit_code.py").as_uri()
    open_doc(client, other, RING_HEAD)
    await client.text_document_inline_completion_async(inline_params(other, 1, 0))
    rows = await _rows_with("shown", len(shown) + 1)
    assert rows[-1]["uri"] == other and "ring_buffer_items" in rows[-1]["code"]
