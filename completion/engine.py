"""The completion engine: editor state in, post-processed suggestions out."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from completion.backends import Backend, BackendInfo, GenerationRequest, make_backend
from completion.cache import PromptCache, TypedAheadCache
from completion.context import ContextBuilder, PromptContext, normalised
from completion.postprocess import (
    PostContext,
    cut_at_stops,
    cut_suffix_repeat,
    finalize,
    trim_to_block,
)
from completion.settings import CompletionSettings, CustomTemplate
from completion.templates import FimTemplate, resolve_template
from completion.tokens import EstimatingCounter, TokenCounter, make_counter
from completion.types import Completion, CompletionRequest
from stacklens.errors import BackendError, ConfigError

log = logging.getLogger(__name__)
# Used only by backends that apply the model's template themselves and could not name it.
_SERVER_SIDE = FimTemplate("server-side", "", "", "", stop=())


class CompletionEngine:
    """Builds the context, calls the backend, post-processes and caches. One per configuration."""

    def __init__(self, settings: CompletionSettings) -> None:
        """``settings`` are validated where they entered (`completion.settings.load_settings`)."""
        self.settings = settings
        self.backend: Backend | None = None
        self.info: BackendInfo | None = None
        self.template: FimTemplate | None = None
        self.builder: ContextBuilder | None = None
        self.prompt_cache = PromptCache(self.settings.cache_size)
        self.typed_ahead = TypedAheadCache()
        self.stats = {
            "requests": 0,
            "typed_ahead_hits": 0,
            "prompt_cache_hits": 0,
            "model_calls": 0,
        }
        self._inflight: set[asyncio.Future[list[Completion]]] = set()  # cancelled by aclose
        self._start_lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the backend and load the model (or check the server); idempotent."""
        async with self._start_lock:
            if self.builder is not None:
                return
            s = self.settings
            # In a thread: the transformers backend's module imports torch (seconds).
            backend = await asyncio.to_thread(make_backend, s)
            info = await backend.start()
            self.template = self._resolve_template(info)
            counter = self._counter(info)
            self.backend, self.info = backend, info
            self.builder = ContextBuilder(self.template, counter, s)
            log.info("completion engine ready: backend=%s template=%s", s.backend, self.template.name)

    def start_sync(self) -> None:
        """`start()` for callers without a running event loop."""
        asyncio.run(self.start())
        self._start_lock = asyncio.Lock()  # the old one belonged to the finished loop

    def _resolve_template(self, info: BackendInfo) -> FimTemplate:
        setting = self.settings.template
        spec = setting.spec() if isinstance(setting, CustomTemplate) else setting
        try:
            template = resolve_template(
                spec or info.template,
                model_id=info.model or self.settings.model,
                tokens=info.special_tokens,
            )
        except ConfigError:
            if info.server_side_fim:
                return _SERVER_SIDE
            raise
        return template.ordered(self.settings.fim_order)

    def _counter(self, info: BackendInfo) -> TokenCounter:
        if info.tokenizer is not None:
            return make_counter(info.tokenizer)
        path = self.settings.tokenizer
        if not path:
            return EstimatingCounter()
        from tokenizers import Tokenizer

        file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
        if os.path.isfile(file):
            return make_counter(Tokenizer.from_file(file))
        try:
            return make_counter(Tokenizer.from_pretrained(path))
        except Exception as exc:
            raise ConfigError(
                f"cannot load tokenizer {path!r} ({exc}); give a local tokenizer.json or directory"
            ) from exc

    async def aclose(self) -> None:
        for fut in list(self._inflight):
            fut.cancel()
        self._inflight.clear()
        if self.backend is not None:
            await self.backend.aclose()
        self.backend, self.builder = None, None

    # --- completion ---------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> list[Completion]:
        """Suggestions for ``request``. Cancelling the call stops its generation; which request
        supersedes which is the caller's to decide (the language server cancels a document's
        older request when a newer one comes: `lsp_server.inline.generate`)."""
        if self.builder is None:
            await self.start()
        inner = asyncio.ensure_future(self._complete(request))
        self._inflight.add(inner)
        try:
            return await inner
        except asyncio.CancelledError:
            inner.cancel()
            raise
        finally:
            self._inflight.discard(inner)

    def accept(self, uri: str, text: str) -> None:
        """The user accepted ``text`` (a suggestion or its start) at the cursor of ``uri``."""
        self.typed_ahead.accept(uri, text.replace("\r\n", "\n"))

    async def _complete(self, request: CompletionRequest) -> list[Completion]:
        assert self.builder is not None and self.backend is not None and self.template is not None
        s = self.settings
        self.stats["requests"] += 1
        t0 = time.perf_counter()
        mode, _line = self.builder.mode_for(request)
        if mode == "none":
            return []
        text, offset = normalised(request)
        crlf = "\r\n" in request.text
        doc_prefix, doc_suffix = text[:offset], text[offset:]
        shown = self.typed_ahead.lookup(request.uri, doc_prefix, doc_suffix)
        if shown:
            self.stats["typed_ahead_hits"] += 1
            self.typed_ahead.remember(request.uri, doc_prefix, doc_suffix, shown)
            ms = {"total": (time.perf_counter() - t0) * 1000}
            return self._out(shown[: request.max_candidates], crlf, True, ms, request.strip)

        ctx = self.builder.build(request, mode)
        t1 = time.perf_counter()
        max_new = min(s.max_new_tokens, s.single_line_max_tokens) if mode == "single" else s.max_new_tokens
        n = max(1, request.max_candidates)
        stops = (*self.template.special_tokens, *s.stop)
        post = PostContext(mode, ctx.line, doc_suffix, stops, s.max_lines)
        key = PromptCache.key(
            ctx.prompt, ctx.prefix, ctx.suffix, mode, str(max_new), str(n), str(s.temperature)
        )
        cached = self.prompt_cache.get(key)
        t2 = t1
        if cached is None:
            raw = await self._generate(ctx, max_new, n, stops, request.uri, post)
            t2 = time.perf_counter()
            texts = tuple(finalize(raw, post))
            self.prompt_cache.put(key, texts)
        else:
            self.stats["prompt_cache_hits"] += 1
            texts = cached
        t3 = time.perf_counter()
        self.typed_ahead.remember(request.uri, doc_prefix, doc_suffix, texts)
        ms = {
            "context": (t1 - t0) * 1000,
            "model": (t2 - t1) * 1000,
            "postprocess": (t3 - t2) * 1000,
            "total": (t3 - t0) * 1000,
        }
        return self._out(texts[: request.max_candidates], crlf, cached is not None, ms, request.strip)

    def _out(
        self, texts: tuple[str, ...], crlf: bool, cached: bool, ms: dict[str, float], strip: tuple[str, ...]
    ) -> list[Completion]:
        model = self.info.model if self.info else self.settings.model
        out = []
        for t in texts:
            for token in strip:  # after the caches, which are shared by every client
                t = t.replace(token, "")
            text = t.replace("\n", "\r\n") if crlf else t
            out.append(Completion(text, self.settings.backend, model, cached, ms))
        return out

    async def _generate(
        self,
        ctx: PromptContext,
        max_new: int,
        n: int,
        stops: tuple[str, ...],
        uri: str,
        post: PostContext,
    ) -> list[str]:
        assert self.backend is not None
        backend_stops = stops
        if ctx.mode == "single" and ctx.line.before.strip():
            backend_stops = ("\n", *stops)
        req = GenerationRequest(
            prompt=ctx.prompt,
            prefix=ctx.prefix,
            suffix=ctx.suffix,
            commented_prefix=ctx.commented_prefix,
            files=ctx.files,
            path=ctx.path,
            max_new_tokens=max_new,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            stop=backend_stops,
            n=n,
            doc_key=uri,
        )
        self.stats["model_calls"] += 1
        try:
            if n == 1 and self.settings.stream:
                return [await self._stream_one(req, ctx, stops, post)]
            return [g.text for g in await self.backend.generate(req)]
        except (BackendError, ConfigError):
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f"{self.settings.backend} backend failed: {exc}") from exc

    async def _stream_one(
        self, req: GenerationRequest, ctx: PromptContext, stops: tuple[str, ...], post: PostContext
    ) -> str:
        """Read the stream and stop it as soon as the rest could only be cut away."""
        assert self.backend is not None
        text = ""
        agen = self.backend.stream(req)
        try:
            async for delta in agen:
                text += delta
                if cut_at_stops(text, stops) != text:
                    break
                body = text.lstrip("\n") if not ctx.line.before.strip() else text
                if ctx.mode == "single" and "\n" in body:
                    break
                if ctx.mode == "multi" and "\n" in delta and _block_done(text, post):
                    break
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()
        return text


def _block_done(text: str, post: PostContext) -> bool:
    """A multi-line stream can stop once a complete line leaves the block, repeats the suffix,
    or the line limit is reached: post-processing would cut everything after it."""
    complete = text[: text.rfind("\n")]
    if complete.count("\n") >= post.max_lines:
        return True
    kept = trim_to_block(cut_suffix_repeat(complete, post), post)
    return len(kept.rstrip()) < len(complete.rstrip())
