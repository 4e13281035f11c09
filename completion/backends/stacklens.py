"""Our own `stacklens serve`: /v1/completions with prefix + ``suffix`` (the server applies its
model's template) and the cross-file snippets as ``input_extra`` (the repo-level format)."""

from __future__ import annotations

from typing import Any

from completion.backends.base import BackendInfo, GenerationRequest
from completion.backends.openai import OpenAIBackend
from completion.settings import StacklensSettings
from stacklens.errors import BackendError


class StacklensBackend(OpenAIBackend):
    name = "stacklens"

    def __init__(self, settings: StacklensSettings) -> None:
        super().__init__(settings)

    async def start(self) -> BackendInfo:
        health = await self.http.get_json("healthz")
        if not isinstance(health, dict) or health.get("status") != "ok":
            raise BackendError(f"stacklens server at {self.http.base_url} is not ready: {health}")
        return BackendInfo(
            model=self.settings.model or str(health.get("model", "")),
            template=health.get("template"),
            server_side_fim=True,
        )

    def body(self, req: GenerationRequest, stream: bool) -> dict[str, Any]:
        body = super().body(req, stream)
        # The server knows the template: send the in-file prefix and the snippets separately.
        body["prompt"] = req.prefix
        body["input_extra"] = [{"filename": f.path, "text": f.text} for f in req.files]
        body["filename"] = req.path
        return body
