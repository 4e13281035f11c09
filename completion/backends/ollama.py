"""Ollama: POST {url}/api/generate, raw prompt with FIM tokens or ``suffix`` when the model's
template supports it (found with /api/show); NDJSON stream of {"response", "done"}."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.http import HttpClient
from completion.settings import OllamaSettings
from stacklens.errors import BackendError, ConfigError


class OllamaBackend:
    name = "ollama"

    def __init__(self, settings: OllamaSettings) -> None:
        if not settings.model:
            raise ConfigError("backend 'ollama' needs `model` (e.g. qwen2.5-coder:1.5b-base)")
        self.settings = settings
        self.http = HttpClient(settings)
        self.mode: str = settings.fim_mode
        self.keep_alive = settings.keep_alive

    async def start(self) -> BackendInfo:
        if self.mode == "auto":
            info = await self.http.post_json("api/show", {"model": self.settings.model})
            template = info.get("template", "") if isinstance(info, dict) else ""
            self.mode = "suffix" if ".Suffix" in template else "raw"
        return BackendInfo(model=self.settings.model, server_side_fim=self.mode == "suffix")

    def body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_predict": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        }
        if req.stop:
            options["stop"] = list(req.stop)
        body: dict[str, Any] = {
            "model": self.settings.model,
            "stream": stream,
            "options": options,
            "keep_alive": self.keep_alive,
        }
        if self.mode == "suffix":
            body["prompt"], body["suffix"] = req.commented_prefix or req.prefix, req.suffix
        else:
            body["prompt"], body["raw"] = req.prompt, True
        return body

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        out = []
        for _ in range(request.n):
            data = await self.http.post_json("api/generate", self.body(request, stream=False))
            if not isinstance(data, dict) or "response" not in data:
                raise BackendError(f"unexpected Ollama answer: {str(data)[:200]}")
            out.append(Generation(data["response"], data.get("done_reason") or "stop"))
        return out

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        async for event in self.http.ndjson("api/generate", self.body(request, stream=True)):
            if "error" in event:
                raise BackendError(f"Ollama stream failed: {event['error']}")
            if event.get("response"):
                yield event["response"]
            if event.get("done"):
                return
        raise self.http.cut("api/generate")

    async def aclose(self) -> None:
        await self.http.aclose()
