"""Typed query settings. The ``code-search`` command reads them from ``STACKLENS_*`` and its flags
(`from_environment`, once, where they enter); everything else passes them in."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from stacklens.environment import settings_from_environment

ENV_PREFIX = "STACKLENS_"


class QuerySettings(BaseModel):
    """How a membership query decides what counts as a match."""

    # A typo in a key is an error, not a default silently kept.
    model_config = ConfigDict(extra="forbid")

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


def from_environment(environ: Mapping[str, str] | None = None, **flags: object) -> QuerySettings:
    """Settings from ``STACKLENS_<FIELD>`` variables, then ``flags`` (a command line's options,
    which win). An invalid value is an `InputError` naming the variable or flag it came from."""
    return settings_from_environment(QuerySettings, ENV_PREFIX, environ, **flags)
