"""llama.cpp server: /infill (the server applies the GGUF's FIM tokens and repo-level pattern)
or /completion with our own prompt; SSE streams of {"content", "stop"}."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.http import HttpClient
from completion.settings import LlamaCppSettings
from stacklens.errors import BackendError


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, settings: LlamaCppSettings) -> None:
        self.settings = settings
        self.http = HttpClient(settings)
        self.endpoint: str = settings.endpoint

    async def start(self) -> BackendInfo:
        return BackendInfo(model=self.settings.model, server_side_fim=self.endpoint == "infill")

    def body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "n_predict": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stream": stream,
            "cache_prompt": True,  # reuse the KV cache of the common prefix across keystrokes
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if self.endpoint == "infill":
            body["input_prefix"], body["input_suffix"] = req.prefix, req.suffix
            body["input_extra"] = [{"filename": f.path, "text": f.text} for f in req.files]
            body["prompt"] = ""
        else:
            body["prompt"] = req.prompt
        return body

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        out = []
        for _ in range(request.n):
            data = await self.http.post_json(self.endpoint, self.body(request, stream=False))
            if not isinstance(data, dict) or "content" not in data:
                raise BackendError(f"unexpected llama.cpp answer: {str(data)[:200]}")
            reason = "length" if data.get("stopped_limit") else "stop"
            out.append(Generation(data["content"], reason))
        return out

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        async for event in self.http.sse(self.endpoint, self.body(request, stream=True)):
            if "error" in event:
                err = event["error"]
                raise BackendError(
                    f"llama.cpp stream failed: {err.get('message', err) if isinstance(err, dict) else err}"
                )
            if event.get("content"):
                yield event["content"]
            if event.get("stop"):
                return
        raise self.http.cut(self.endpoint)

    async def aclose(self) -> None:
        await self.http.aclose()
