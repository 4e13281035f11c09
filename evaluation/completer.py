"""Where completions come from: the completion engine as the language server runs it, or the
oracle (each task's canonical middle, the harness's own check)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from completion.backends.base import Backend, BackendInfo, Generation, GenerationRequest
from completion.types import CompletionRequest, OpenDocument
from stacklens.errors import BackendError, StacklensError

from .datasets import Task
from .score import editor_text, oracle_completion

WORKSPACE = "file:///workspace/"


@dataclass(frozen=True)
class Outcome:
    text: str
    latency_ms: float
    ttft_ms: float | None = None  # first streamed text, when the backend streams
    tokens: int | None = None  # tokens the model generated
    generation_ms: float | None = None
    error: str | None = None


@dataclass
class _Timing:
    started: float
    first: float | None = None
    ended: float | None = None
    text: str = ""


class TimedBackend:
    """The engine's backend, timed per request: when the first text arrived and how much came."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.timings: dict[str, _Timing] = {}

    def __getattr__(self, name: str) -> Any:  # anything else the engine asks of its backend
        return getattr(self.inner, name)

    async def start(self) -> BackendInfo:
        return await self.inner.start()

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        timing = self.timings[request.doc_key] = _Timing(time.perf_counter())
        out = await self.inner.generate(request)
        timing.ended = time.perf_counter()
        timing.text = out[0].text if out else ""
        return out

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        timing = self.timings[request.doc_key] = _Timing(time.perf_counter())
        agen = self.inner.stream(request)
        try:
            async for delta in agen:
                if timing.first is None:
                    timing.first = time.perf_counter()
                timing.text += delta
                yield delta
        finally:
            timing.ended = time.perf_counter()
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    async def aclose(self) -> None:
        await self.inner.aclose()


def request_for(task: Task, sample: int) -> CompletionRequest:
    """The editor's request for ``task``. Each sample has its own URI (the fragment), so no
    sample is served from another's typed-ahead cache or cancels another in flight."""
    text, offset = editor_text(task)
    uri = f"{WORKSPACE}{quote(task.path)}#{quote(task.task_id, safe='')}/{sample}"
    others = tuple(
        OpenDocument(f"{WORKSPACE}{quote(f.path)}", f.text, task.language) for f in task.other_files
    )
    return CompletionRequest(
        uri=uri,
        text=text,
        offset=offset,
        language_id=task.language,
        other_documents=others,
        explicit=True,  # the harness asks, as a user invoking completion does: mid-word too
        max_candidates=1,
    )


class OracleCompleter:
    name = "oracle"

    async def start(self) -> None:
        return None

    async def complete(self, task: Task, sample: int) -> Outcome:
        return Outcome(oracle_completion(task), 0.0)

    async def aclose(self) -> None:
        return None


class EngineCompleter:
    """A `CompletionEngine` built from completion settings, exactly as the language server does."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        from completion.engine import CompletionEngine
        from completion.settings import load_settings

        self.name = name
        self.settings = load_settings(settings)
        self.engine = CompletionEngine(self.settings)
        self.timed: TimedBackend | None = None

    async def start(self) -> None:
        try:
            await self.engine.start()
        except StacklensError:
            raise
        except Exception as exc:  # a model that does not load: one message, not a traceback
            raise BackendError(f"the completion engine ({self.name}) failed to start: {exc}") from exc
        assert self.engine.backend is not None
        self.timed = TimedBackend(self.engine.backend)
        self.engine.backend = self.timed

    async def complete(self, task: Task, sample: int) -> Outcome:
        assert self.timed is not None and self.engine.builder is not None
        request = request_for(task, sample)
        started = time.perf_counter()
        try:
            items = await self.engine.complete(request)
        except Exception as exc:  # one failed request costs one task, as in the editor
            ms = (time.perf_counter() - started) * 1000
            return Outcome("", ms, error=f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        timing = self.timed.timings.pop(request.uri, None)
        text = items[0].text if items else ""
        if timing is None or timing.ended is None:
            return Outcome(text, ms)
        ttft = (timing.first - timing.started) * 1000 if timing.first is not None else None
        tokens = self.engine.builder.counter.count(timing.text) if timing.text else 0
        return Outcome(text, ms, ttft, tokens, (timing.ended - timing.started) * 1000)

    async def aclose(self) -> None:
        await self.engine.aclose()
