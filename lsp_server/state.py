"""The language server object: configuration, engines, membership, highlights, and the helpers
every feature module shares (messages, publishing, background scans)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage
from pygls.uris import to_fs_path

from completion.types import OpenDocument

from .audit import AuditLog
from .checker import MembershipGate
from .config import ConfigError, ConfigLayers, ServerConfig
from .documents import DocumentText, LspTextDocument, codec_of, language_of, open_text, path_hint
from .engines import Engines
from .highlights import Highlight, HighlightStore, diagnostics
from .policy import Allowlist, Policy
from .protocol import StacklensProtocol

log = logging.getLogger(__name__)
VERSION = "0.1.0"
MAX_OTHER_DOCUMENTS = 8
MAX_TIMINGS = 2000
MAX_REMEMBERED = 64  # requests whose shown suggestions can still be accepted


def _raw_converter() -> Any:
    """pygls's converter, but custom-method params stay plain JSON (dicts), not namedtuples:
    llm-ls params are read by key, camelCase and all."""
    from lsprotocol import converters

    converter = converters.get_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCNotification):
        # JSON-RPC lets a request or notification leave out `params`.
        converter.register_structure_hook(cls, lambda obj, c: c(**{"params": None, **obj}))
    converter.register_structure_hook(JsonRPCResponseMessage, lambda obj, c: c(**obj))
    return converter


class StacklensServer(LanguageServer):
    """Holds the per-session state; features live in their own modules."""

    def __init__(self, flags: Mapping[str, Any] | None = None) -> None:
        super().__init__(
            "stacklens",
            VERSION,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            converter_factory=_raw_converter,
            protocol_cls=StacklensProtocol,
        )
        self.layers = ConfigLayers(flags=flags)
        self.config: ServerConfig = self.layers.current
        self.engines = Engines(self.show_error)
        self.engines.timeout_s = self.config.completion_timeout_s
        self.gate = MembershipGate(self.config.membership)
        self.audit = AuditLog(self.config.membership, lambda: self.policy)
        self.allowlist = Allowlist(None)
        self.policy = Policy(self.config.membership, self.allowlist)
        self.highlights = HighlightStore()
        self.inflight: dict[str, asyncio.Task[Any]] = {}
        self.scans: dict[str, asyncio.Task[None]] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()  # uris, most recently used last
        # request id -> what it showed, for its accept (both accept paths): the server's own copy
        # of the matches and offsets, never what a client sends back
        self.results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.pending_messages: list[tuple[types.MessageType, str]] = []
        # uri -> (offset, text, context chars, matches) of an accept that arrived before its edit
        self.pending_accepts: dict[str, tuple[int, str, int, list[Any]]] = {}
        self.initialized = False
        self.shutdown_requested = False
        self.closing: asyncio.Future[None] | None = None
        self.completions_served = 0
        self.timings: deque[dict[str, float]] = deque(maxlen=MAX_TIMINGS)  # recent, per request
        self._reported: set[str] = set()
        if self.layers.env_error:
            self.pending_messages.append((types.MessageType.Warning, self.layers.env_error))

    # -- messages ---------------------------------------------------------------------------

    def remember(self, request_id: str, entry: dict[str, Any]) -> None:
        """Keep what a request showed until its accept (the last MAX_REMEMBERED requests)."""
        self.results[request_id] = entry
        while len(self.results) > MAX_REMEMBERED:
            self.results.popitem(last=False)

    def show(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """`window/showMessage`, queued until the client is initialized."""
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.WARNING, "%s", message)
        if not self.initialized:
            self.pending_messages.append((kind, message))
            return
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def show_error(self, message: str) -> None:
        self.show(message, types.MessageType.Error)

    def show_once(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """A message shown at most once per configuration (failures repeat per keystroke)."""
        if message not in self._reported:
            self._reported.add(message)
            self.show(message, kind)

    def membership_unavailable(self, exc: Exception) -> None:
        """One message for a dead index or service, whether a scan or a suggestion met it first."""
        self.show_once(
            "stacklens: membership check unavailable: no suggestions are shown and copies are not "
            f"highlighted until it answers ({str(exc) or type(exc).__name__})"
        )

    def flush_messages(self) -> None:
        self.initialized = True
        for kind, message in self.pending_messages:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        self.pending_messages.clear()

    # -- configuration ----------------------------------------------------------------------
    def set_root(self, root_uri: str | None) -> None:
        path = to_fs_path(root_uri) if root_uri and root_uri.startswith("file:") else None
        self.allowlist = Allowlist(Path(path) if path else None)
        self.policy = Policy(self.config.membership, self.allowlist)

    async def apply_layer(self, name: str, raw: Any) -> None:
        """Validate and apply one configuration layer; a bad one costs a message, not a crash."""
        old = self.config
        try:
            self.config = self.layers.update(name, raw)
        except ConfigError as exc:
            self.show_error(f"stacklens: {exc}")
            return
        if self.config.log_level:
            logging.getLogger().setLevel(self.config.log_level.upper())
        self.engines.timeout_s = self.config.completion_timeout_s
        if self.config.membership != old.membership:
            self.gate.close()
            self.gate = MembershipGate(self.config.membership)
            self.audit.close()
            self.audit = AuditLog(self.config.membership, lambda: self.policy)
            self.policy = Policy(self.config.membership, self.allowlist)
            self._reported.clear()
            for uri in list(self.workspace.text_documents):
                self.schedule_scan(uri, delay=0.0)
        elif (self.config.diagnostic_severity, self.config.blocked_diagnostic_severity) != (
            old.diagnostic_severity,
            old.blocked_diagnostic_severity,
        ):
            for uri in list(self.workspace.text_documents):
                if self.highlights.get(uri):
                    self.publish(uri)
        await self.engines.configure(self.config.completion)

    async def pull_configuration(self) -> None:
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section="stacklens")])
                ),
                timeout=10,
            )
        except Exception as exc:  # some clients answer with an error; the other layers still apply
            log.info("workspace/configuration pull failed: %s", exc)
            return
        if result and isinstance(result[0], dict):
            await self.apply_layer("pull", result[0])

    # -- documents --------------------------------------------------------------------------
    def snapshot(self, uri: str) -> tuple[DocumentText, str] | None:
        found = open_text(self.workspace, uri)
        if found is None:
            return None
        text, language_id = found
        doc = self.workspace.text_documents.get(uri)
        # An open document keeps its line starts up to date: no split per snapshot.
        starts = doc.line_starts() if isinstance(doc, LspTextDocument) and doc.source is text else None
        return DocumentText.of(text, codec_of(self.workspace), starts), language_of(uri, language_id)

    def touch(self, uri: str) -> None:
        self.recent[uri] = None
        self.recent.move_to_end(uri)

    def other_documents(self, uri: str) -> tuple[OpenDocument, ...]:
        docs = self.workspace.text_documents
        uris = [u for u in reversed(self.recent) if u != uri and u in docs][:MAX_OTHER_DOCUMENTS]
        return tuple(OpenDocument(u, docs[u].source, language_of(u, docs[u].language_id)) for u in uris)

    def publish(self, uri: str) -> None:
        snap = self.snapshot(uri)
        doc = snap[0] if snap else DocumentText.of("", codec_of(self.workspace))
        version = None
        if (open_doc := self.workspace.text_documents.get(uri)) is not None:
            version = open_doc.version
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                diagnostics=diagnostics(
                    self.highlights,
                    uri,
                    doc,
                    self.config.diagnostic_severity,
                    self.config.blocked_diagnostic_severity,
                ),
                version=version,
            )
        )

    # -- background scans -------------------------------------------------------------------
    def schedule_scan(self, uri: str, delay: float | None = None) -> None:
        """Check the whole document after ``delay`` s; a newer schedule cancels the older one."""
        cfg = self.config.membership
        if not (cfg.background and self.gate.configured):
            return
        old = self.scans.pop(uri, None)
        if old is not None and not old.done():
            old.cancel()
        wait = cfg.background_debounce_ms / 1000 if delay is None else delay
        self.scans[uri] = asyncio.ensure_future(self._scan(uri, wait))

    async def _scan(self, uri: str, delay: float) -> None:
        await asyncio.sleep(delay)
        snap = self.snapshot(uri)
        if snap is None or not snap[0].text or snap[0].text.isspace():  # no copy of a huge text
            return
        doc, lang = snap
        path = path_hint(uri)
        try:
            regions = await self.gate.scan(doc.text, lang, path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead index: one message, the document stays usable
            self.membership_unavailable(exc)
            return
        found: list[Highlight] = []
        for r in regions:
            shown = self.policy.reportable(r.matches, path)
            if not shown or self.policy.action(shown) == "off":
                continue
            blocked = any(self.policy.license_action(m.source.license) == "block" for m in shown)
            found.append(Highlight(r.start, r.end, doc.text[r.start : r.end], shown, "scan", blocked))
        self.highlights.set_scan(uri, found)
        current = self.snapshot(uri)
        if current is not None and current[0].text != doc.text:
            self.highlights.relocate(uri, current[0].text)
        self.publish(uri)

    def cancel_all(self) -> None:
        for task in [*self.scans.values(), *self.inflight.values()]:
            if not task.done():
                task.cancel()
