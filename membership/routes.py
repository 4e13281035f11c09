"""The membership service's endpoints. Handlers are plain functions: FastAPI runs them in its
thread pool, so a slow check never blocks the event loop (and /healthz)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from index.protocol import IndexStore
from stacklens.errors import StacklensError

from .api import (
    CheckRequest,
    CheckResponse,
    ErrorBody,
    Health,
    OverlapRequest,
    OverlapResponse,
    SearchRequest,
    SearchResponse,
    SnippetResult,
)
from .checker import Checker
from .limits import ServiceLimits
from .match import Match


@dataclass
class ServiceState:
    """What the lifespan opens once and every request shares."""

    store: IndexStore
    checker: Checker  # over ``store``; it serialises checks where the store needs it
    limits: ServiceLimits


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 408, 413, 422, 501, 502)
}

api = APIRouter(responses=ERRORS)
health = APIRouter()


@contextlib.contextmanager
def _budget(limits: ServiceLimits) -> Iterator[Any]:
    deadline = time.monotonic() + limits.max_request_seconds

    def check() -> None:
        if time.monotonic() > deadline:
            raise HTTPException(
                408,
                f"checking took longer than the {limits.max_request_seconds:g} s limit; "
                "send fewer or smaller snippets",
            )

    yield check


def _too_long(what: str, n: int, limit: int) -> HTTPException:
    return HTTPException(413, f"{what} has {n:,} characters; the limit is {limit:,}")


def _check_one(state: ServiceState, text: str, lang: str | None, path: str | None) -> list[Match]:
    return state.checker.check(text, lang=lang, path=path)


@api.post("/v1/check", response_model=CheckResponse, summary="Find snippets in the corpus")
def check(body: CheckRequest, request: Request) -> CheckResponse:
    state = _state(request)
    limits = state.limits
    if len(body.snippets) > limits.max_snippets:
        raise HTTPException(
            413, f"{len(body.snippets)} snippets in one request; the limit is {limits.max_snippets}"
        )
    for i, s in enumerate(body.snippets):
        if len(s.text) > limits.max_snippet_chars:
            raise _too_long(f"snippet {i}", len(s.text), limits.max_snippet_chars)
    results = []
    with _budget(limits) as within_budget:
        for s in body.snippets:
            within_budget()
            matches = _check_one(state, s.text, s.lang, s.path) if s.text.strip() else []
            results.append(SnippetResult(id=s.id, matches=matches))
    return CheckResponse(results=results)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching spans merged."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@api.post("/overlap", response_model=OverlapResponse, summary="Spans of a document found in the corpus")
def overlap(body: OverlapRequest, request: Request) -> OverlapResponse:
    state = _state(request)
    if len(body.document) > state.limits.max_snippet_chars:
        raise _too_long("the document", len(body.document), state.limits.max_snippet_chars)
    if not body.document.strip():
        return OverlapResponse(spans=[])
    matches = _check_one(state, body.document, None, None)
    spans = [(m.query_span.start_char, m.query_span.end_char) for m in matches]
    return OverlapResponse(spans=merge_spans(spans))


@api.post("/v1/search", response_model=SearchResponse, summary="Full-text code search")
def search(body: SearchRequest, request: Request) -> SearchResponse:
    store = _state(request).store
    search_fn = getattr(store, "search", None)
    if search_fn is None:
        raise HTTPException(
            501,
            "full-text search needs the Elasticsearch store (serve with --es-url and --es-index); "
            "this service answers /v1/check and /overlap from an embedded index",
        )
    filters = {"lang": body.lang, "license": body.license, "repo": body.repo}
    found = search_fn(body.query, phrase=body.phrase, filters=filters, offset=body.offset, size=body.size)
    return SearchResponse.model_validate(found)


@health.get("/healthz", response_model=Health, responses={503: {"model": ErrorBody}})
def healthz(request: Request) -> Any:
    """Open to everyone (no token): answers 200 when the store answers."""
    try:
        return Health(status="ok", store=_state(request).store.describe())
    except StacklensError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)


def docs_router(app: FastAPI) -> APIRouter:
    """``/openapi.json``, ``/docs`` and ``/redoc`` of ``app``, as routes that can take the token
    dependency (the pages load the schema from the browser, so with a token they need a client
    that sends it)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    return router
