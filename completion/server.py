"""`stacklens serve`: one GPU machine serving many editors. The model loads once (lifespan);
OpenAI-compatible /v1/completions, TGI-compatible /generate and /generate_stream, /healthz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from completion.backends.base import GenerationRequest
from completion.crossfile import as_comment_block, language_of
from completion.postprocess import cut_at_stops
from completion.server_asgi import BodyLimit, ClientGone, error_response
from completion.server_schemas import CompletionBody
from completion.settings import TransformersSettings
from completion.templates import FimTemplate, SourceFile, resolve_template
from index.errors import InputError, StacklensError
from stacklens.auth import bearer_token_matches

if TYPE_CHECKING:
    from completion.batching import Batcher

log = logging.getLogger(__name__)
# Where a model's config keeps its context length, by architecture.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_seq_len")


@dataclass
class ServerConfig:
    model: str
    token: str | None = None
    max_body_bytes: int = 1_000_000
    template: str | None = None
    device: str = "auto"
    dtype: str = "auto"


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
        self.context_length: int | None = None
        self.stats = {"abandoned": 0}  # requests whose client left before the answer

    def load(self) -> None:
        """Load the model now (the CLI does, so a bad --model is one line, not a traceback)."""
        self.backend.load()

    async def start(self) -> None:
        from completion.batching import Batcher

        info = await self.backend.start()
        self.context_length = _context_length(self.backend.model, self.backend.tokenizer)
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

    async def check_fits(self, prompt: str, max_new: int, field: str = "max_tokens") -> int:
        """The prompt's token count, after refusing up front what the model cannot generate: an
        empty prompt, or a prompt and ``max_new`` tokens over its context (it would fail, or
        ramble past it, after a minute of work)."""
        # In a thread: a prompt near the body limit takes seconds to tokenize on a small CPU.
        n = len((await asyncio.to_thread(self.backend.tokenizer, prompt))["input_ids"])
        if n == 0:
            raise InputError("the prompt is empty: send at least the code before the cursor")
        ctx = self.context_length
        if ctx is not None and n + max_new > ctx:
            raise InputError(
                f"the prompt ({n} tokens) and {field}={max_new} need {n + max_new}, over this "
                f"model's context of {ctx} tokens; send a shorter prompt or ask for fewer tokens"
            )
        return n

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

    def usage(self, prompt_tokens: int, texts: list[str]) -> dict[str, int]:
        tok = self.backend.tokenizer
        c = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": c, "total_tokens": prompt_tokens + c}


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
        if config.token and not bearer_token_matches(request.headers.get("authorization", ""), config.token):
            raise _AuthError()

    app = FastAPI(title="stacklens completion server", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    @app.exception_handler(_AuthError)
    async def _auth(request: Request, exc: _AuthError) -> JSONResponse:
        resp = error_response(
            401,
            "missing or wrong bearer token: send `Authorization: Bearer <token>`",
            "authentication_error",
        )
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(StacklensError)
    async def _stacklens(request: Request, exc: StacklensError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(exc.http_status, str(exc))

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> JSONResponse:
        service.stats["abandoned"] += 1
        log.info("%s %s: the client left; its generation was stopped", request.method, request.url.path)
        return error_response(499, "the client closed the connection")  # nobody reads this

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # Our fault, never the client's: the traceback goes to the log (Starlette re-raises).
        message = f"internal error ({type(exc).__name__}): see the server log"
        return error_response(500, message, "server_error")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, an unknown route) in our error shape.
        resp = error_response(exc.status_code, str(exc.detail))
        resp.headers.update(exc.headers or {})
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            # Union members show up in `loc` as "function-after[...]" or "list[str]": not a field.
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body" and "[" not in str(p))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_response(400, "invalid request: " + "; ".join(parts))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": config.model,
            "template": service.template.name if service.template else None,
            "device": service.backend.device,
            "context_length": service.context_length,
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


def _context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt and generated) the model takes; None when it does not say."""
    config = getattr(model, "config", None)
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (1e30).
    return value if isinstance(value, int) and 0 < value < 10_000_000 else None


__all__ = ["ServerConfig", "create_app"]
