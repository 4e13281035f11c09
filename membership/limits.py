"""Limits of the membership service; env vars ``STACKLENS_SERVICE_*`` or `create_app` set them."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceLimits(BaseSettings):
    """What one request may ask of the service. Each violation is a 4xx with a message."""

    model_config = SettingsConfigDict(env_prefix="STACKLENS_SERVICE_", extra="ignore")

    max_body_bytes: int = Field(4_000_000, ge=1, description="request bodies above are refused (413)")
    max_snippets: int = Field(64, ge=1, description="snippets per /v1/check request (413)")
    max_snippet_chars: int = Field(100_000, ge=1, description="characters per snippet or document (413)")
    max_request_seconds: float = Field(
        10.0, gt=0, description="a check still running after this is stopped between snippets (408)"
    )
