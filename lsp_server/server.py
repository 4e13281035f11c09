"""Server assembly: lifecycle, configuration and document sync, plus every feature module."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from lsprotocol import types

from . import code_actions, commands, evidence, hover, inline, llmls
from .documents import LspTextDocument, use_lsp_lines
from .state import StacklensServer

log = logging.getLogger(__name__)


async def _close_engines(ls: StacklensServer) -> None:
    try:
        await asyncio.wait_for(ls.engines.aclose(), timeout=3)
    except Exception:  # a stuck backend must not delay exit
        log.warning("completion engines did not close cleanly", exc_info=True)


def _lifecycle(ls: StacklensServer) -> None:
    @ls.feature(types.INITIALIZE)
    async def initialize(ls: StacklensServer, params: types.InitializeParams) -> None:
        root = params.root_uri
        if root is None and params.workspace_folders:
            root = params.workspace_folders[0].uri
        ls.set_root(root)
        use_lsp_lines(ls.workspace)
        if params.initialization_options is not None:
            await ls.apply_layer("init", params.initialization_options)

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: StacklensServer, params: types.InitializedParams) -> None:
        ls.flush_messages()
        await ls.pull_configuration()
        # Start loading the model now rather than on the first keystroke.
        await ls.engines.configure(ls.config.completion)

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: StacklensServer, params: types.DidChangeConfigurationParams
    ) -> None:
        settings = params.settings
        if isinstance(settings, dict) and settings:
            # The pushed section is the new configuration; a pull now could only answer the same
            # settings, or, from a client whose answer differs, undo the change just pushed.
            await ls.apply_layer("push", settings)
            return
        # Pull-model clients send null: the change has to be fetched.
        await ls.pull_configuration()

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: StacklensServer, params: None) -> None:
        # Synchronous on purpose: `exit` often arrives in the same read and must see the flag.
        ls.shutdown_requested = True
        ls.cancel_all()
        ls.gate.close()
        ls.closing = asyncio.ensure_future(_close_engines(ls))

    @ls.feature(types.EXIT)
    def exit_(ls: StacklensServer, params: None) -> None:
        # pygls waits for its reader thread, blocked on stdin that some clients (eglot) keep
        # open until the process is gone: leave right away instead.
        code = 0 if ls.shutdown_requested else 1
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)


def _documents(ls: StacklensServer) -> None:
    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: StacklensServer, params: types.DidOpenTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = ls.workspace.text_documents.get(uri)
        if isinstance(doc, LspTextDocument):
            doc.line_starts()  # the one whole-text split: edits and snapshots keep it up to date
        ls.touch(uri)
        ls.schedule_scan(uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: StacklensServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.touch(uri)
        pending = ls.pending_accepts.pop(uri, None)
        if pending is not None:
            commands.highlight_inserted(ls, uri, *pending, retry=False)
        if not ls.highlights.get(uri):
            return  # nothing to keep in place: no work per keystroke
        doc = ls.workspace.text_documents.get(uri)
        if doc is not None and ls.highlights.relocate(uri, doc.source):
            ls.publish(uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: StacklensServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.schedule_scan(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StacklensServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.scans.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.recent.pop(uri, None)
        ls.highlights.clear(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def create_server(flags: Mapping[str, Any] | None = None) -> StacklensServer:
    """A fully registered server, not yet started; ``flags``: settings from the command line."""
    ls = StacklensServer(flags)
    _lifecycle(ls)
    _documents(ls)
    inline.register(ls)
    commands.register(ls)
    hover.register(ls)
    evidence.register(ls)
    code_actions.register(ls)
    llmls.register(ls)
    return ls
