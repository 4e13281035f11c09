"""Hugging Face Inference API: POST {url}/models/{model} -> [{"generated_text"}] or {"error"}."""

from __future__ import annotations

from collections.abc import AsyncIterator

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.http import HttpClient, stream_once
from completion.backends.tgi import tgi_parameters
from completion.settings import CompletionSettings
from stacklens.errors import BackendError, ConfigError


class HuggingFaceBackend:
    name = "huggingface"

    def __init__(self, settings: CompletionSettings) -> None:
        if not settings.model:
            raise ConfigError("backend 'huggingface' needs `model` (a hub id)")
        self.settings = settings
        self.http = HttpClient(settings)

    async def start(self) -> BackendInfo:
        return BackendInfo(model=self.settings.model)

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        out: list[Generation] = []
        for _ in range(request.n):
            body = {
                "inputs": request.prompt,
                "parameters": tgi_parameters(request),
                "options": {"use_cache": request.temperature == 0, "wait_for_model": True},
            }
            data = await self.http.post_json(f"models/{self.settings.model}", body)
            if isinstance(data, dict) and "error" in data:
                raise BackendError(f"Hugging Face Inference API: {data['error']}")
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list) or not data or "generated_text" not in data[0]:
                raise BackendError(f"unexpected Inference API answer: {str(data)[:200]}")
            out.extend(Generation(d["generated_text"]) for d in data[:1])
        return out

    def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        return stream_once(self.generate(request))

    async def aclose(self) -> None:
        await self.http.aclose()
