"""Links into the stack search page of ``code-search serve`` (``GET /?q=CODE``): where "open
source" goes for a match whose source has no URL of its own."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from pydantic import AfterValidator

# The page's server reads request heads up to 16 KiB (h11's default); a link stays well under,
# and a longer highlight is linked by its first lines (the page finds the source from those).
MAX_LINK_CHARS = 8000


def http_url(value: str | None) -> str | None:
    """``value`` if it is an http(s) URL with a host (a settings validator); None when unset."""
    if value is None or not value.strip():
        return None
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL, such as http://127.0.0.1:8400/")
    return value.strip()


HttpUrlText = Annotated[str | None, AfterValidator(http_url)]


def page_base(search_page_url: str | None, service_url: str | None) -> str | None:
    """The page's address: the configured one, else the membership service's (which serves it)."""
    base = search_page_url or service_url
    return base.rstrip("/") + "/" if base else None


def page_link(base: str, text: str, path: str | None = None) -> str:
    """``base?q=TEXT[&path=PATH]``, with as many whole lines of ``text`` as fit the link limit."""

    def link(q: str) -> str:
        params = {"q": q, **({"path": path} if path else {})}
        return base + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)

    lines = text.splitlines(keepends=True)
    while len(lines) > 1 and len(link("".join(lines))) > MAX_LINK_CHARS:
        lines.pop()
    q = "".join(lines)
    while len(q) > 1 and len(link(q)) > MAX_LINK_CHARS:  # one very long line
        q = q[: len(q) * 3 // 4]
    return link(q)
