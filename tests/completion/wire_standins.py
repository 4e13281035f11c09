"""Loopback stand-ins for TGI and OpenAI-compatible servers, written from their published API
references (TGI's OpenAPI: `/generate`, `/generate_stream`; OpenAI's legacy `/v1/completions`),
not from our own `stacklens serve`, so that a format misread the same way on both sides fails.

`Script.mode` picks what the next answers do: ``ok``; ``split`` (every stream event arrives in
small pieces, across reads); ``cut`` (the connection drops in the middle of an event);
``truncated`` (the stream ends cleanly at an event boundary but before its last event);
``error_event`` (an error event inside a 200 stream); ``4xx`` / ``5xx`` (error payloads)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

PIECES = ("def", " add", "(a, b):", "\n    return a + b")
TEXT = "".join(PIECES)


@dataclass
class Script:
    mode: str = "ok"
    failures_left: int = 0  # with mode "5xx": how many answers fail before one succeeds
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Cut(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


async def stream_body(events: list[str], script: Script) -> AsyncIterator[bytes]:
    """The events of a streamed answer as ``script.mode`` wants them sent (SSE or NDJSON)."""
    for i, event in enumerate(events):
        data = event.encode()
        if script.mode == "cut" and i == len(events) // 2:
            yield data[: len(data) // 2]  # half an event, then the connection goes
            await asyncio.sleep(0.01)
            raise Cut
        if script.mode == "truncated" and i == len(events) - 1:
            return
        if script.mode == "split":
            for at in range(0, len(data), 5):
                yield data[at : at + 5]
                await asyncio.sleep(0.002)  # separate writes, so separate reads
        else:
            yield data


def _sse(events: list[str], script: Script) -> StreamingResponse:
    return StreamingResponse(stream_body(events, script), media_type="text/event-stream")


def _failure(script: Script, four: tuple[int, Any], five: tuple[int, Any]) -> JSONResponse | None:
    if script.mode == "4xx":
        return JSONResponse(four[1], status_code=four[0])
    if script.mode == "5xx" and script.failures_left != 0:
        script.failures_left -= 1
        return JSONResponse(five[1], status_code=five[0])
    return None


def tgi_app(script: Script) -> FastAPI:
    """TGI: errors are ``{"error": str, "error_type": str}`` (422 validation, 424 generation,
    429 overloaded, 500 incomplete generation); stream events are ``data:`` lines (no space, as
    TGI writes them) with a ``token`` object, and the last carries ``generated_text``."""
    app = FastAPI()
    four = (422, {"error": "Input validation error: `inputs` must not be empty", "error_type": "validation"})
    five = (
        500,
        {"error": "Request failed during generation: CUDA out of memory", "error_type": "generation"},
    )

    @app.post("/generate", response_model=None)
    async def generate(request: Request) -> Any:
        body = await request.json()
        script.bodies.append(("/generate", body))
        failed = _failure(script, four, five)
        if failed is not None:
            return failed
        details = {"finish_reason": "length", "generated_tokens": len(PIECES), "seed": None}
        return {"generated_text": TEXT, "details": details}

    @app.post("/generate_stream", response_model=None)
    async def generate_stream(request: Request) -> Any:
        body = await request.json()
        script.bodies.append(("/generate_stream", body))
        failed = _failure(script, four, five)
        if failed is not None:
            return failed
        events = []
        for i, piece in enumerate(PIECES):
            last = i == len(PIECES) - 1
            event = {
                "index": i + 1,
                "token": {"id": 100 + i, "text": piece, "logprob": -0.5, "special": False},
                "generated_text": TEXT if last else None,
                "details": {"finish_reason": "length", "generated_tokens": len(PIECES), "seed": None}
                if last
                else None,
            }
            events.append(f"data:{json.dumps(event)}\n\n")
        if script.mode == "error_event":
            error = {"error": "Request failed during generation: overloaded", "error_type": "generation"}
            events[2:] = [f"data:{json.dumps(error)}\n\n"]
        return _sse(events, script)

    return app


def openai_app(script: Script) -> FastAPI:
    """OpenAI legacy completions: errors are ``{"error": {"message", "type", "param", "code"}}``;
    a stream is ``data: {...}`` chunks of ``choices[].text`` and then ``data: [DONE]``."""
    app = FastAPI()
    four = (
        401,
        {
            "error": {
                "message": "Incorrect API key provided: sk-...",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )
    five = (
        503,
        {
            "error": {
                "message": "The server is overloaded",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
    )

    @app.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Any:
        body = await request.json()
        script.bodies.append(("/v1/completions", body))
        failed = _failure(script, four, five)
        if failed is not None:
            return failed
        head = {"id": "cmpl-1", "object": "text_completion", "created": 1733000000, "model": body["model"]}
        if not body.get("stream"):
            choices = [
                {
                    "text": TEXT if i == 0 else f"alt {i}",
                    "index": i,
                    "logprobs": None,
                    "finish_reason": "length",
                }
                for i in reversed(range(body.get("n", 1)))  # any order: `index` says which is which
            ]
            usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
            return {**head, "choices": choices, "usage": usage}
        events = []
        for i, piece in enumerate(PIECES):
            finish = "length" if i == len(PIECES) - 1 else None
            chunk = {
                **head,
                "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        if script.mode == "error_event":
            error = {
                "error": {
                    "message": "The server had an error",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
            events[2:] = [f"data: {json.dumps(error)}\n\n"]
        events.append("data: [DONE]\n\n")
        return _sse(events, script)

    return app
