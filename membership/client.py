"""`RemoteChecker`: the `Matcher` interface over HTTP, for ``code-search query --url`` and the
language server. Every call ends within its timeouts; failures are `StacklensError`s."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from stacklens.errors import BackendError, ConfigError, InputError, StacklensError

from .match import Match
from .settings import QuerySettings

if TYPE_CHECKING:
    from .checker import Snippet

log = logging.getLogger(__name__)


class RemoteChecker:
    """Checks code against a running membership service (``code-search serve``)."""

    def __init__(
        self,
        url: str,
        *,
        settings: QuerySettings | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.settings = settings or QuerySettings()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    def __enter__(self) -> RemoteChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self._http.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendError(
                f"the membership service at {self.url} did not answer in time ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendError(
                f"cannot reach the membership service at {self.url} ({exc}); "
                "is `code-search serve` running there?"
            ) from exc
        if r.status_code == 200:
            answer: dict[str, Any] = r.json()
            return answer
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text[:500]
        message = f"the membership service at {self.url} answered {r.status_code}: {detail}"
        error: type[StacklensError]
        if r.status_code == 401:
            error = ConfigError
        elif 400 <= r.status_code < 500:
            error = InputError
        else:
            error = BackendError
        raise error(message)

    def describe(self) -> str:
        return f"membership service {self.url}"

    def evidence(
        self, text: str, lang: str | None = None, path: str | None = None
    ) -> list[tuple[Match, dict[str, Any]]]:
        """``POST /v1/evidence``: the matches of ``text``, each with its side-by-side evidence
        (`membership.evidence.Evidence.to_json`'s shape; ``Evidence.from_json`` reads it)."""
        data = self._post("/v1/evidence", {"text": text, "lang": lang, "path": path})
        return [(Match.model_validate(r["match"]), r["evidence"]) for r in data["results"]]

    def check_many(self, snippets: Sequence[Snippet], *, focus_start: int = 0) -> list[list[Match]]:
        """Matches per snippet (``{"text", "lang"?, "path"?}``), in order, in one request.
        ``focus_start`` is not sent: the service checks each text whole (its API has no focus)."""
        data = self._post("/v1/check", {"snippets": list(snippets)})
        results = data["results"]
        if len(results) != len(snippets):
            raise BackendError(
                f"the membership service at {self.url} answered {len(results)} results "
                f"for {len(snippets)} snippets"
            )
        limit = self.settings.max_matches
        return [[Match.model_validate(m) for m in res["matches"]][:limit] for res in results]

    def check(
        self, text: str, lang: str | None = None, path: str | None = None, *, focus_start: int = 0
    ) -> list[Match]:
        """Matches of ``text`` in the service's corpus, best first (as `Matcher.check`, except
        that ``focus_start`` is not sent: see `check_many`)."""
        if len(text) > self.settings.max_query_bytes:
            raise InputError(
                f"the query has {len(text):,} characters; the limit is {self.settings.max_query_bytes:,}"
            )
        return self.check_many([{"text": text, "lang": lang, "path": path}])[0]

    def overlap(self, document: str) -> list[tuple[int, int]]:
        """Character spans of ``document`` found in the corpus (Data Portraits' /overlap)."""
        spans = self._post("/overlap", {"document": document})["spans"]
        return [(int(s), int(e)) for s, e in spans]

    def search(self, query: str, **filters: Any) -> dict[str, Any]:
        return self._post("/v1/search", {"query": query, **filters})
