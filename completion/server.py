"""`stacklens serve`: one GPU machine serving many editors. The model loads once (lifespan);
OpenAI-compatible /v1/completions, TGI-compatible /generate and /generate_stream, /healthz."""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from completion.backends.base import GenerationRequest
from completion.crossfile import as_comment_block, language_of
from completion.postprocess import cut_at_stops
from completion.server_schemas import CompletionBody
from completion.settings import TransformersSettings
from completion.templates import FimTemplate, SourceFile, resolve_template
from index.errors import InputError, StacklensError

if TYPE_CHECKING:
    from completion.batching import Batcher

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]


@dataclass
class ServerConfig:
    model: str
    token: str | None = None
    max_body_bytes: int = 1_000_000
    template: str | None = None
    device: str = "auto"
    dtype: str = "auto"


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies over the limit (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _too_large(self.limit)(scope, receive, send)
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise InputError(f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body over {limit} bytes: send less context or raise --max-body-bytes")


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


class ModelService:
    """The loaded model plus its template; generation helpers shared by both APIs."""

    def __init__(self, config: ServerConfig) -> None:
        from completion.backends.transformers_backend import TransformersBackend

        settings = TransformersSettings.model_validate(
            {"model": config.model, "device": config.device, "dtype": config.dtype}
        )
        self.config = config
        self.backend = TransformersBackend(settings)
        self.template: FimTemplate | None = None
        self.batcher: Batcher | None = None

    async def start(self) -> None:
        from completion.batching import Batcher

        info = await self.backend.start()
        self.batcher = Batcher(self.backend)
        self.batcher.start()
        try:
            self.template = resolve_template(
                self.config.template, model_id=self.config.model, tokens=info.special_tokens
            )
        except StacklensError:
            log.warning("no FIM template known for %s: requests with `suffix` will fail", self.config.model)

    def fim_prompt(self, body: CompletionBody, prompt: str) -> str:
        if body.suffix is None:
            return prompt
        if self.template is None:
            raise InputError("this model has no known FIM template: restart with --template NAME")
        files = tuple(SourceFile(f.filename, f.text) for f in body.input_extra)
        if self.template.has_repo_format:
            return self.template.render(prompt, body.suffix, files, body.filename)
        blocks = "".join(as_comment_block(f.path, f.text, language_of(f.path)) for f in files)
        return self.template.render(blocks + prompt, body.suffix)

    async def generate(self, req: GenerationRequest) -> list[str]:
        """Texts (cut at stops) for a non-streaming request; n=1 requests are batched."""
        if req.n == 1 and self.batcher is not None:
            return [cut_at_stops(await self.batcher.submit(req), req.stop)]
        return [cut_at_stops(g.text, req.stop) for g in await self.backend.generate(req)]

    def stops(self, extra: list[str]) -> tuple[str, ...]:
        specials = self.template.special_tokens if self.template else ()
        eos = self.backend.tokenizer.eos_token
        return tuple(dict.fromkeys([*extra, *specials, *([eos] if eos else [])]))

    def request(
        self,
        prompt: str,
        max_new: int,
        temperature: float,
        top_p: float,
        stop: tuple[str, ...],
        n: int = 1,
        doc_key: str = "",
    ) -> GenerationRequest:
        return GenerationRequest(
            prompt=prompt,
            max_new_tokens=max_new,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            n=n,
            doc_key=doc_key,
        )

    async def stream_text(self, req: GenerationRequest) -> AsyncIterator[str]:
        """Deltas cut at the first stop string; text that may start a stop is held back."""
        hold = max((len(s) for s in req.stop), default=1) - 1
        text, sent = "", 0
        agen = self.backend.stream(req)
        try:
            async for delta in agen:
                text += delta
                cut = cut_at_stops(text, req.stop)
                if len(cut) < len(text):
                    if len(cut) > sent:
                        yield cut[sent:]
                    return
                safe = len(text) - hold
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
            if len(text) > sent:
                yield text[sent:]
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                await aclose()

    def usage(self, prompt: str, texts: list[str]) -> dict[str, int]:
        tok = self.backend.tokenizer
        p = len(tok(prompt)["input_ids"])
        c = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def create_app(config: ServerConfig) -> FastAPI:
    service = ModelService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()  # the model loads once, before the first request
        yield
        if service.batcher is not None:
            await service.batcher.aclose()
        await service.backend.aclose()

    def authorize(request: Request) -> None:
        if not config.token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), config.token):
            raise _AuthError()

    app = FastAPI(title="stacklens completion server", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    @app.exception_handler(_AuthError)
    async def _auth(request: Request, exc: _AuthError) -> JSONResponse:
        resp = _error(
            401,
            "missing or wrong bearer token: send `Authorization: Bearer <token>`",
            "authentication_error",
        )
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(StacklensError)
    async def _stacklens(request: Request, exc: StacklensError) -> JSONResponse:
        if isinstance(exc, InputError) and "request body over" in str(exc):
            return _too_large(config.max_body_bytes)
        return _error(exc.http_status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return _error(400, "invalid request: " + "; ".join(parts))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": config.model,
            "template": service.template.name if service.template else None,
            "device": service.backend.device,
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": config.model, "object": "model", "owned_by": "stacklens"}],
        }

    from completion.server_routes import add_generation_routes

    add_generation_routes(app, service, authorize)
    return app


class _AuthError(Exception):
    pass


def sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


__all__ = ["ServerConfig", "create_app"]
