"""Limits of the membership service: ``code-search serve`` reads ``STACKLENS_SERVICE_*`` once
(`from_environment`); `create_app` takes them as given."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from stacklens.environment import settings_from_environment

ENV_PREFIX = "STACKLENS_SERVICE_"


class ServiceLimits(BaseModel):
    """What one request may ask of the service. Each violation is a 4xx with a message."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(4_000_000, ge=1, description="request bodies above are refused (413)")
    max_snippets: int = Field(64, ge=1, description="snippets per /v1/check request (413)")
    max_snippet_chars: int = Field(100_000, ge=1, description="characters per snippet or document (413)")
    max_request_seconds: float = Field(
        10.0, gt=0, description="a check still running after this is stopped between snippets (408)"
    )


def from_environment(environ: Mapping[str, str] | None = None) -> ServiceLimits:
    """The limits ``STACKLENS_SERVICE_<FIELD>`` variables set; a bad value is an `InputError`."""
    return settings_from_environment(ServiceLimits, ENV_PREFIX, environ)
