"""The generation routes of the completion server: /v1/completions, /generate, /generate_stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from completion.server_schemas import CompletionBody, GenerateBody
from index.errors import InputError

if TYPE_CHECKING:
    from completion.server import ModelService

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def add_generation_routes(app: FastAPI, service: ModelService, authorize: Callable[..., None]) -> None:
    from completion.server import completion_id, now, sse

    model_name = service.config.model

    @app.post("/v1/completions", dependencies=[Depends(authorize)], response_model=None)
    async def completions(body: CompletionBody) -> Any:
        prompt = body.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1 or not isinstance(prompt[0], str):
                raise InputError("`prompt` must be one string (batches of prompts are not supported)")
            prompt = prompt[0]
        text_prompt = service.fim_prompt(body, prompt)
        stop_list = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        stops = service.stops(stop_list)
        req = service.request(
            text_prompt,
            body.max_tokens,
            body.temperature,
            body.top_p,
            stops,
            n=body.n,
            doc_key=body.filename,
        )
        cid, created = completion_id(), now()
        if body.stream:
            if body.n != 1:
                raise InputError("streaming supports n=1 only")

            async def events() -> AsyncIterator[str]:
                async for delta in service.stream_text(req):
                    yield sse(
                        {
                            "id": cid,
                            "object": "text_completion",
                            "created": created,
                            "model": model_name,
                            "choices": [{"index": 0, "text": delta, "finish_reason": None, "logprobs": None}],
                        }
                    )
                yield sse(
                    {
                        "id": cid,
                        "object": "text_completion",
                        "created": created,
                        "model": model_name,
                        "choices": [{"index": 0, "text": "", "finish_reason": "stop", "logprobs": None}],
                    }
                )
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream", headers=_SSE_HEADERS)
        texts = await service.generate(req)
        choices = [
            {"index": i, "text": t, "finish_reason": "stop", "logprobs": None} for i, t in enumerate(texts)
        ]
        return {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model_name,
            "choices": choices,
            "usage": service.usage(text_prompt, texts),
        }

    def tgi_request(body: GenerateBody) -> Any:
        p = body.parameters
        temperature = (p.temperature or 1.0) if p.do_sample or p.temperature else 0.0
        stops = service.stops(p.stop)
        return service.request(body.inputs, p.max_new_tokens, temperature, p.top_p or 1.0, stops)

    @app.post("/generate", dependencies=[Depends(authorize)])
    async def generate(body: GenerateBody) -> dict[str, Any]:
        req = tgi_request(body)
        text = (await service.generate(req))[0]
        out: dict[str, Any] = {
            "generated_text": (body.inputs + text) if body.parameters.return_full_text else text
        }
        if body.parameters.details:
            n = service.usage("", [text])["completion_tokens"]
            out["details"] = {"finish_reason": "eos_token", "generated_tokens": n}
        return out

    @app.post("/generate_stream", dependencies=[Depends(authorize)], response_model=None)
    async def generate_stream(body: GenerateBody, request: Request) -> StreamingResponse:
        req = tgi_request(body)

        async def events() -> AsyncIterator[str]:
            full, index = "", 0
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
