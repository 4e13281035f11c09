"""Completion engines the server owns: the configured one, plus a few built from the settings an
llm-ls client sends with each request. Starting one loads a model, so it happens once, in the
background, and a failure becomes one message instead of a hang per keystroke."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from completion.types import Completion, CompletionRequest
from stacklens.errors import StacklensError

from .config import has_backend

log = logging.getLogger(__name__)
MAX_CLIENT_ENGINES = 2
# A failed start is retried on a later request, waiting longer after each failure: a backend
# that was down or hanging when the editor started comes back without a restart, and a model
# that cannot load is not reloaded per keystroke.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
# What an llm-ls client's request decides (which model, where, with whose token); every other
# server-side completion setting (timeouts, retries, cache, context shaping) applies to it too.
_CLIENT_DECIDES = {"backend", "model", "url", "api_token", "template", "tokenizer", "fim_order"}


def client_settings(server: dict[str, Any] | None, request: dict[str, Any]) -> dict[str, Any]:
    """An llm-ls request's engine settings over the server's own tuning."""
    tuning = {k: v for k, v in (server or {}).items() if k not in _CLIENT_DECIDES}
    return {**tuning, **request}


# llm-ls clients send no settings of ours: the server's environment is where they go.
LLM_LS_ENV = (
    "in the server's environment: point llm.lsp.binaryPath at a wrapper script that exports it "
    'and runs `exec /abs/path/to/stacklens lsp "$@"` (llm-vscode passes no PATH)'
)


def _llm_ls_hint(message: str) -> str:
    """How to change the setting ``message`` names, for a client that cannot send it."""
    if "timeout_s" in message:
        return f' (set it with STACKLENS_CONFIG=\'{{"completion": {{"timeoutS": 30}}}}\' {LLM_LS_ENV})'
    return ""


class EngineSlot:
    """One engine, started lazily; remembers why it could not start."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.engine: Any = None
        self.error: str | None = None
        self._starting: asyncio.Task[None] | None = None
        self.failures = 0
        self._retry_at = 0.0

    def describe(self) -> str:
        s = self.settings
        return f"{s.get('backend', 'transformers')} {s.get('model') or s.get('url') or ''}".strip()

    async def _start(self) -> None:
        engine: Any = None
        try:
            from completion.engine import CompletionEngine
            from completion.settings import load_settings

            engine = CompletionEngine(load_settings(self.settings))
            await engine.start()
            self.engine, self.error, self.failures = engine, None, 0
            log.info("completion engine ready: %s", self.describe())
            return
        except asyncio.CancelledError:
            raise
        except StacklensError as exc:
            self.error = str(exc)
        except Exception as exc:  # any backend failure must end as a message, not a crash
            log.exception("completion engine %s failed to start", self.describe())
            self.error = f"the completion engine ({self.describe()}) failed to start: {exc}"
        self.failures += 1
        wait = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self.failures - 1))
        self._retry_at = time.monotonic() + wait
        log.info(
            "completion engine %s: start %d failed, next try in %.0f s", self.describe(), self.failures, wait
        )
        if engine is not None:
            try:
                await engine.aclose()  # its HTTP client; the retry builds a new engine
            except Exception:  # closing is best effort
                log.debug("closing a failed engine failed", exc_info=True)

    def start(self) -> asyncio.Task[None]:
        failed = self._starting is not None and self._starting.done() and self.engine is None
        if failed and time.monotonic() >= self._retry_at:
            self._starting = None
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        return self._starting

    async def ready(self) -> Any:
        """The started engine; raises `StacklensError` with the start failure."""
        await asyncio.shield(self.start())
        if self.engine is None:
            raise StacklensError(self.error or "the completion engine is not available")
        return self.engine

    async def aclose(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        engine, self.engine = self.engine, None
        if engine is not None:
            try:
                await engine.aclose()
            except Exception:  # closing is best effort
                log.debug("closing engine failed", exc_info=True)


class Engines:
    """The configured engine and a small LRU of client-specified ones."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify  # shows a message to the user, at most once per distinct error
        self.configured: EngineSlot | None = None
        self.clients: OrderedDict[str, EngineSlot] = OrderedDict()
        self._reported: set[str] = set()
        self.timeout_s = 30.0
        self._closing: set[asyncio.Task[None]] = set()

    async def configure(self, settings: dict[str, Any] | None) -> None:
        """Swap the configured engine when its settings changed; start the new one eagerly."""
        if self.configured is not None and self.configured.settings == settings:
            return
        old, self.configured = self.configured, None
        if old is not None:
            await old.aclose()
        if settings and has_backend(settings):
            self.configured = EngineSlot(settings)
            self.configured.start()

    def slot_for(self, settings: dict[str, Any] | None) -> EngineSlot | None:
        if settings is None:
            return self.configured
        key = json.dumps(settings, sort_keys=True, default=str)
        slot = self.clients.get(key)
        if slot is None:
            slot = self.clients[key] = EngineSlot(settings)
            while len(self.clients) > MAX_CLIENT_ENGINES:
                _, evicted = self.clients.popitem(last=False)
                task = asyncio.ensure_future(evicted.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        self.clients.move_to_end(key)
        return slot

    def report(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.notify(message)

    async def complete(
        self, request: CompletionRequest, settings: dict[str, Any] | None = None, client: str = "lsp"
    ) -> list[Completion]:
        """Candidates, or [] (with one message) when no engine is configured or it fails.
        ``client`` "llm-ls": the messages say how to change settings an llm-ls client cannot send.
        ``asyncio.CancelledError`` propagates: the request was superseded or cancelled."""
        slot = self.slot_for(settings)
        llm_ls = client == "llm-ls"
        if slot is None:
            where = (
                "set llm.backend and llm.url in the editor, or STACKLENS_BACKEND and "
                f"STACKLENS_COMPLETION_URL {LLM_LS_ENV}"
                if llm_ls
                else 'set stacklens.completion, e.g. {"backend": "openai", "url": ...}'
            )
            self.report(f"stacklens: no completion backend configured ({where})")
            return []
        try:
            engine = await slot.ready()
            return list(await asyncio.wait_for(engine.complete(request), self.timeout_s))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("completion timed out after %.0f s", self.timeout_s)
            how = (
                f"STACKLENS_CONFIG='{{\"completionTimeoutS\": 60}}' {LLM_LS_ENV}"
                if llm_ls
                else "stacklens.completionTimeoutS"
            )
            self.report(
                f"stacklens: the completion backend did not answer in {self.timeout_s:.0f} s "
                f"(to wait longer, set {how})"
            )
        except StacklensError as exc:
            log.warning("completion failed: %s", exc)
            self.report(f"stacklens: {exc}{_llm_ls_hint(str(exc)) if llm_ls else ''}")
        except Exception as exc:  # a dead backend gives an empty result, not a crash
            log.exception("completion failed")
            self.report(f"stacklens: completion failed: {exc}")
        return []

    def accept(self, uri: str, text: str) -> None:
        for slot in [self.configured, *self.clients.values()]:
            if slot is not None and slot.engine is not None:
                try:
                    slot.engine.accept(uri, text)
                except Exception:  # feedback is advisory
                    log.debug("engine.accept failed", exc_info=True)

    def status(self) -> dict[str, Any]:
        def one(slot: EngineSlot) -> dict[str, Any]:
            state = "ready" if slot.engine else ("failed" if slot.error else "starting")
            # The model the backend reported (a model server names its own when none is set).
            info = getattr(slot.engine, "info", None)
            model = getattr(info, "model", "") or slot.settings.get("model") or None
            return {"engine": slot.describe(), "model": model, "state": state, "error": slot.error}

        return {
            "configured": one(self.configured) if self.configured else None,
            "clients": [one(s) for s in self.clients.values()],
        }

    async def aclose(self) -> None:
        for slot in [self.configured, *self.clients.values()]:
            if slot is not None:
                await slot.aclose()
