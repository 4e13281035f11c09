"""Text Generation Inference (and our server's TGI-compatible routes): /generate(_stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.http import HttpClient
from completion.settings import CompletionSettings
from stacklens.errors import BackendError


def tgi_parameters(req: GenerationRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "max_new_tokens": req.max_new_tokens,
        "return_full_text": False,
        "do_sample": req.temperature > 0,
    }
    if req.temperature > 0:  # TGI rejects temperature 0
        params["temperature"] = req.temperature
        params["top_p"] = min(req.top_p, 0.999) if req.top_p < 1 else None
    if req.stop:
        params["stop"] = list(req.stop)[:4]  # TGI caps stop sequences (default 4)
    return {k: v for k, v in params.items() if v is not None}


class TGIBackend:
    name = "tgi"

    def __init__(self, settings: CompletionSettings) -> None:
        self.settings = settings
        self.http = HttpClient(settings)

    async def start(self) -> BackendInfo:
        return BackendInfo(model=self.settings.model)

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        out = []
        for _ in range(request.n):
            body = {"inputs": request.prompt, "parameters": tgi_parameters(request)}
            data = await self.http.post_json("generate", body)
            if not isinstance(data, dict) or "generated_text" not in data:
                raise BackendError(f"unexpected TGI answer: {str(data)[:200]}")
            details = data.get("details") or {}
            out.append(Generation(data["generated_text"], _finish(details.get("finish_reason"))))
        return out

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        body = {"inputs": request.prompt, "parameters": tgi_parameters(request), "stream": True}
        async for event in self.http.sse("generate_stream", body):
            if "error" in event:
                raise BackendError(
                    f"TGI stream failed: {event['error']} ({event.get('error_type', 'error')})"
                )
            token = event.get("token") or {}
            if not token.get("special") and token.get("text"):
                yield token["text"]
            if event.get("generated_text") is not None:  # TGI's last event carries the whole text
                return
        raise self.http.cut("generate_stream")

    async def aclose(self) -> None:
        await self.http.aclose()


def _finish(reason: Any) -> str:
    return "length" if reason == "length" else "stop"
