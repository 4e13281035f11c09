"""The match object: the one JSON shape shared by the CLI, the HTTP services and the LSP."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repo: str | None = None
    path: str
    license: str | None = None
    url: str | None = None
    sha: str | None = Field(None, description="SHA-1 of the source document's text, as indexed")


class SourceSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)


class QuerySpan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    start_char: int = Field(ge=0)
    end_char: int = Field(ge=0)


class Match(BaseModel):
    """Generated text found in the corpus. Lines are 1-based and inclusive; chars are offsets
    (Python string indices) into the query text, end exclusive."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["exact", "near"]
    score: float = Field(ge=0.0, le=1.0)
    source: Source
    source_span: SourceSpan
    query_span: QuerySpan
    matched_chars: int = Field(ge=0)
    occurrences: int = Field(1, ge=1, description="how many corpus files contain the matched code")

    def describe(self) -> str:
        """One line for humans: where, which lines, how strongly, under which licence."""
        where = f"{self.source.repo}/{self.source.path}" if self.source.repo else self.source.path
        lic = self.source.license or "licence unknown"
        common = f", found in {self.occurrences:,} files" if self.occurrences > 1 else ""
        return (
            f"{where}:{self.source_span.start_line}-{self.source_span.end_line} "
            f"({self.kind}, score {self.score:.2f}, {self.matched_chars} chars, {lic}{common})"
        )
