"""The stack search page of ``code-search serve``: ``GET /`` and its two assets.

The page is static and holds no data, so it is served without the token (a browser cannot send
a header when it navigates); everything it shows comes from ``POST /v1/evidence``, which it calls
with the token the user typed (kept in the tab's sessionStorage). Nothing is loaded from
elsewhere: the Content-Security-Policy allows this origin only. ``/?q=CODE`` opens a search (the
language server links sources without a URL so); no referrer is sent, because the URL carries
the user's code and the page links to corpus sources on other hosts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

STATIC = Path(__file__).parent / "static"
ASSETS = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

page_router = APIRouter(include_in_schema=False)


def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@page_router.get("/")
def page() -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@page_router.get("/static/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}; the page has {', '.join(sorted(ASSETS))}")
    return Response(_asset(name), media_type=ASSETS[name], headers=HEADERS)
