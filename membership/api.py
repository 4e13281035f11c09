"""Request and response bodies of the membership service (the OpenAPI schema comes from these)."""

from __future__ import annotations

from typing import Annotated, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .match import Match

# Elasticsearch's default result window: hits past offset + size = 10,000 cannot be paged to.
MAX_RESULT_WINDOW = 10_000
T = TypeVar("T")


def _unicode(value: T) -> T:
    # JSON's \ud800 escapes decode to lone surrogates, which no answer could carry back (UTF-8
    # cannot encode them) and no corpus text contains.
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the text has a lone surrogate (\\u{ord(value[exc.start]):04x}) at character {exc.start}; "
            "send valid Unicode"
        ) from None
    return value


Text = Annotated[str, AfterValidator(_unicode)]
SnippetId = Annotated[str | int | None, AfterValidator(_unicode)]


class Snippet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: SnippetId = Field(None, description="echoed back in the result")
    text: Text = Field(description="code to check")
    lang: Text | None = Field(None, description="language id (default: from path, else guessed)")
    path: Text | None = Field(None, description="file name, used to tell the language")


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

    document: Text


class OverlapResponse(BaseModel):
    spans: list[tuple[int, int]] = Field(
        description="[start, end) character offsets into the document of text found in the "
        "corpus, sorted and merged"
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=3, max_length=2000, description="text to look for")
    phrase: bool = Field(False, description="exact substring (case-insensitive) instead of BM25")
    lang: list[Text] = Field(default_factory=list, description="only these languages")
    license: list[Text] = Field(default_factory=list, description="only these licences")
    repo: list[Text] = Field(default_factory=list, description="only these repositories")
    offset: int = Field(0, ge=0, lt=MAX_RESULT_WINDOW, description="hits to skip; offset + size <= 10,000")
    size: int = Field(10, ge=1, le=100, description="hits per page")

    @model_validator(mode="after")
    def _within_result_window(self) -> Self:
        if self.offset + self.size > MAX_RESULT_WINDOW:
            raise ValueError(
                f"offset + size is {self.offset + self.size:,}; results can be paged to the "
                f"{MAX_RESULT_WINDOW:,}th hit at most: narrow the query with filters instead"
            )
        return self


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
