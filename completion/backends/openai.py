"""OpenAI-compatible legacy completions (vLLM, llama-cpp-python, LM Studio, our server):
POST {url}/v1/completions, FIM tokens in ``prompt`` or raw prefix + ``suffix``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from completion.backends.base import BackendInfo, Generation, GenerationRequest
from completion.backends.http import HttpClient
from completion.settings import OpenAISettings, StacklensSettings
from stacklens.errors import BackendError


def completions_path(base_url: str) -> str:
    return "completions" if base_url.rstrip("/").endswith("/v1") else "v1/completions"


class OpenAIBackend:
    name = "openai"

    def __init__(self, settings: OpenAISettings | StacklensSettings) -> None:
        self.settings = settings
        self.http = HttpClient(settings)
        self.path = completions_path(self.http.base_url)
        # `stacklens serve` always applies its model's template itself (server-side FIM).
        self.suffix_mode = isinstance(settings, StacklensSettings) or settings.fim_mode == "suffix"

    async def start(self) -> BackendInfo:
        return BackendInfo(model=self.settings.model, server_side_fim=self.suffix_mode)

    def body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "max_tokens": req.max_new_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "n": req.n,
            "stream": stream,
        }
        if req.stop:
            body["stop"] = list(req.stop)[:4]  # the OpenAI API accepts at most 4
        if self.suffix_mode:
            body["prompt"], body["suffix"] = req.commented_prefix or req.prefix, req.suffix
        else:
            body["prompt"] = req.prompt
        return body

    async def generate(self, request: GenerationRequest) -> list[Generation]:
        data = await self.http.post_json(self.path, self.body(request, stream=False))
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise BackendError(f"unexpected completions answer: {str(data)[:200]}")
        choices = sorted(choices, key=lambda c: c.get("index", 0))
        return [Generation(c.get("text") or "", c.get("finish_reason") or "stop") for c in choices]

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        async for event in self.http.sse(self.path, self.body(request, stream=True), until_done=True):
            if "error" in event:
                err = event["error"]
                raise BackendError(
                    f"completions stream failed: {err.get('message', err) if isinstance(err, dict) else err}"
                )
            for choice in event.get("choices") or []:
                if choice.get("index", 0) == 0 and choice.get("text"):
                    yield choice["text"]

    async def aclose(self) -> None:
        await self.http.aclose()
