"""Request and response bodies of the membership service (the OpenAPI schema comes from these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .match import Match


class Snippet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | int | None = Field(None, description="echoed back in the result")
    text: str = Field(description="code to check")
    lang: str | None = Field(None, description="language id (default: from path, else guessed)")
    path: str | None = Field(None, description="file name, used to tell the language")


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snippets: list[Snippet] = Field(description="checked in order; the count is limited")


class SnippetResult(BaseModel):
    id: str | int | None
    matches: list[Match]


class CheckResponse(BaseModel):
    results: list[SnippetResult] = Field(description="one per snippet, in request order")


class OverlapRequest(BaseModel):
    """What llm-vscode's attribution command posts (Data Portraits' ``/overlap``)."""

    document: str


class OverlapResponse(BaseModel):
    spans: list[tuple[int, int]] = Field(
        description="[start, end) character offsets into the document of text found in the "
        "corpus, sorted and merged"
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=3, max_length=2000, description="text to look for")
    phrase: bool = Field(False, description="exact substring (case-insensitive) instead of BM25")
    lang: list[str] = Field(default_factory=list, description="only these languages")
    license: list[str] = Field(default_factory=list, description="only these licences")
    repo: list[str] = Field(default_factory=list, description="only these repositories")
    offset: int = Field(0, ge=0, le=10_000)
    size: int = Field(10, ge=1, le=100)


class SearchHit(BaseModel):
    score: float | None
    repo: str | None
    path: str
    license: str | None
    lang: str | None
    url: str | None
    lines: int | None


class SearchResponse(BaseModel):
    total: int
    offset: int
    hits: list[SearchHit]


class Health(BaseModel):
    status: str
    store: str


class ErrorBody(BaseModel):
    detail: str
