"""The generation routes of the completion server: /v1/completions, /generate, /generate_stream."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from stacklens.errors import InputError, StacklensError

from .asgi import sse, tgi_error, unless_gone
from .model import ModelService
from .schemas import CompletionBody, GenerateBody

if TYPE_CHECKING:
    from completion.backends.base import GenerationRequest

log = logging.getLogger(__name__)
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex[:24]}"


def _failure(exc: Exception) -> tuple[str, str]:
    """The message and type of an error event: a stream's status line is already sent as 200."""
    if isinstance(exc, StacklensError) and exc.http_status < 500:
        return str(exc), "invalid_request_error"
    log.error("generation failed mid-stream", exc_info=exc)
    if isinstance(exc, StacklensError):
        return str(exc), "server_error"
    return f"generation failed ({type(exc).__name__}): see the server log", "server_error"


def add_generation_routes(app: FastAPI, service: ModelService, authorize: Callable[..., None]) -> None:
    model_name = service.config.model

    @app.post("/v1/completions", dependencies=[Depends(authorize)], response_model=None)
    async def completions(body: CompletionBody, request: Request) -> Any:
        prompt = body.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1 or not isinstance(prompt[0], str):
                raise InputError("`prompt` must be one string (batches of prompts are not supported)")
            prompt = prompt[0]
        if body.stream and body.n != 1:
            raise InputError("streaming supports n=1 only")
        text_prompt = service.fim_prompt(body, prompt)
        prompt_tokens = await service.check_fits(text_prompt, body.max_tokens)
        stop_list = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        req = service.request(
            text_prompt,
            body.max_tokens,
            body.temperature,
            body.top_p,
            service.stops(stop_list),
            n=body.n,
            doc_key=body.filename,
        )
        cid, created = completion_id(), int(time.time())

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            return {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model_name,
                "choices": [choice],
            }

        if body.stream:

            async def events() -> AsyncIterator[str]:
                try:
                    async for delta in service.stream_text(req):
                        yield sse(chunk(delta, None))
                except Exception as exc:
                    message, kind = _failure(exc)
                    yield sse({"error": {"message": message, "type": kind}})
                else:
                    yield sse(chunk("", "stop"))
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)
        texts = await unless_gone(request, service.generate(req))
        choices = [
            {"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in enumerate(texts)
        ]
        return {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model_name,
            "choices": choices,
            "usage": service.usage(prompt_tokens, texts),
        }

    async def tgi_request(body: GenerateBody) -> GenerationRequest:
        p = body.parameters
        await service.check_fits(body.inputs, p.max_new_tokens, "max_new_tokens")
        temperature = (p.temperature or 1.0) if p.do_sample or p.temperature else 0.0
        stops = service.stops(p.stop)
        return service.request(body.inputs, p.max_new_tokens, temperature, p.top_p or 1.0, stops)

    @app.post("/generate", dependencies=[Depends(authorize)])
    async def generate(body: GenerateBody, request: Request) -> dict[str, Any]:
        req = await tgi_request(body)
        text = (await unless_gone(request, service.generate(req)))[0]
        out: dict[str, Any] = {
            "generated_text": (body.inputs + text) if body.parameters.return_full_text else text
        }
        if body.parameters.details:
            n = service.usage(0, [text])["completion_tokens"]
            out["details"] = {"finish_reason": "eos_token", "generated_tokens": n}
        return out

    @app.post("/generate_stream", dependencies=[Depends(authorize)], response_model=None)
    async def generate_stream(body: GenerateBody) -> StreamingResponse:
        req = await tgi_request(body)

        async def events() -> AsyncIterator[str]:
            full, index = "", 0
            try:
                async for delta in service.stream_text(req):
                    full += delta
                    index += 1
                    yield sse(
                        {
                            "index": index,
                            "token": {"id": 0, "text": delta, "logprob": 0.0, "special": False},
                            "generated_text": None,
                            "details": None,
                        }
                    )
            except Exception as exc:
                message, kind = _failure(exc)
                yield sse(tgi_error(message, kind))  # as TGI reports a failed stream
                return
            final = (body.inputs + full) if body.parameters.return_full_text else full
            yield sse(
                {
                    "index": index + 1,
                    "token": {"id": 0, "text": "", "logprob": 0.0, "special": True},
                    "generated_text": final,
                    "details": {"finish_reason": "eos_token", "generated_tokens": index},
                }
            )

        return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)
