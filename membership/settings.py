"""Typed query settings; env vars ``STACKLENS_*`` and CLI flags both land here."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class QuerySettings(BaseSettings):
    """How a membership query decides what counts as a match."""

    model_config = SettingsConfigDict(env_prefix="STACKLENS_", extra="ignore")

    min_chars: int = Field(150, ge=1, description="minimum matched normalised characters")
    max_matches: int = Field(10, ge=1, le=1000, description="matches returned per query")
    max_query_bytes: int = Field(1_000_000, ge=1, description="larger queries are refused")
    max_postings: int = Field(512, ge=1, description="fingerprints shared by more documents are boilerplate")
    min_structure: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="share of non-identifier tokens a renamed-only match needs",
    )
    min_coverage: float = Field(
        0.7, ge=0.0, le=1.0, description="share of a matched span its shared k-grams must cover"
    )
    near_duplicates: bool = Field(True, description="also look for near copies with MinHash LSH")
