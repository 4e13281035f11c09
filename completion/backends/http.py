"""Shared HTTP plumbing for remote backends: timeouts, bounded retries with backoff on connection
errors and 5xx, bearer auth (never logged), SSE and NDJSON streams."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from completion.settings import CompletionSettings
from stacklens.errors import BackendError, ConfigError

log = logging.getLogger(__name__)


class HttpClient:
    def __init__(self, settings: CompletionSettings, base_url: str | None = None) -> None:
        url = base_url or settings.url
        if not url:
            raise ConfigError(f"backend {settings.backend!r} needs `url`")
        self.base_url = url.rstrip("/")
        self.retries = settings.retries
        self.backoff = settings.retry_backoff_s
        headers = {b"User-Agent": b"stacklens"}
        if settings.token:
            # As UTF-8 bytes: httpx encodes str header values as ASCII, so a non-ASCII token raised.
            headers[b"Authorization"] = f"Bearer {settings.token}".encode()
        self._headers = headers
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._clients: dict[int, httpx.AsyncClient] = {}

    @property
    def _client(self) -> httpx.AsyncClient:
        # One client per event loop: pooled connections belong to the loop that opened them
        # (start_sync() runs start() in a loop of its own).
        key = id(asyncio.get_running_loop())
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)
            self._clients[key] = client
        return client

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    async def _send(self, method: str, path: str, body: Any, stream: bool) -> httpx.Response:
        url = self.url(path)
        attempt = 0
        while True:
            try:
                req = self._client.build_request(method, url, json=body)
                resp = await self._client.send(req, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if attempt >= self.retries:
                    raise BackendError(
                        f"cannot reach the model server at {self.base_url} ({type(exc).__name__}); "
                        "check that it is running and that `url` is right"
                    ) from exc
            except httpx.TimeoutException as exc:
                raise BackendError(
                    f"the model server at {self.base_url} did not answer in time; "
                    "raise `timeout_s` or use a smaller model"
                ) from exc
            else:
                if resp.status_code < 500 or attempt >= self.retries:
                    if resp.status_code >= 400:
                        await _raise_for(resp, self.base_url)
                    return resp
                await resp.aclose()
            attempt += 1
            delay = self.backoff * (2 ** (attempt - 1))
            log.debug("retrying %s %s in %.2fs (attempt %d)", method, url, delay, attempt)
            await asyncio.sleep(delay)

    async def post_json(self, path: str, body: Any) -> Any:
        resp = await self._send("POST", path, body, stream=False)
        try:
            return resp.json()
        except ValueError as exc:
            raise BackendError(f"{self.url(path)} answered something that is not JSON") from exc

    async def get_json(self, path: str) -> Any:
        resp = await self._send("GET", path, None, stream=False)
        return resp.json()

    @asynccontextmanager
    async def _stream(self, path: str, body: Any) -> AsyncIterator[httpx.Response]:
        resp = await self._send("POST", path, body, stream=True)
        try:
            yield resp
        finally:
            await resp.aclose()

    async def sse(self, path: str, body: Any, *, until_done: bool = False) -> AsyncIterator[Any]:
        """JSON payloads of ``data:`` lines until ``[DONE]`` or the end of the stream;
        ``until_done``: a stream that ends without ``[DONE]`` was cut (`BackendError`)."""
        async for line in self._lines(path, body):
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            if data:
                yield self._event(path, data)
        if until_done:
            raise self.cut(path)

    async def ndjson(self, path: str, body: Any) -> AsyncIterator[Any]:
        async for line in self._lines(path, body):
            if line.strip():
                yield self._event(path, line)

    async def _lines(self, path: str, body: Any) -> AsyncIterator[str]:
        # A connection dropped mid-stream surfaces as an httpx error from the read, after the
        # status was 200: it must be the backend error every caller handles, not a crash.
        async with self._stream(path, body) as resp:
            try:
                async for line in resp.aiter_lines():
                    yield line
            except httpx.TimeoutException as exc:
                raise BackendError(
                    f"the model server at {self.base_url} stopped sending mid-answer; "
                    "raise `timeout_s` or see the server's log"
                ) from exc
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise self.cut(path) from exc

    def _event(self, path: str, data: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(
                f"{self.url(path)} sent a stream event that is not JSON: {data[:200]!r}"
            ) from exc

    def cut(self, path: str) -> BackendError:
        """The error for a stream that ended before its last event."""
        return BackendError(
            f"the stream from {self.url(path)} ended before its last event (connection cut?); "
            "no suggestion was shown: see the model server's log"
        )

    async def aclose(self) -> None:
        key = id(asyncio.get_running_loop())
        clients, self._clients = self._clients, {}
        for k, client in clients.items():
            if k == key:
                await client.aclose()


async def _raise_for(resp: httpx.Response, base_url: str) -> None:
    await resp.aread()
    detail = resp.text[:300]
    try:
        payload = resp.json()
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            err = err.get("message")
        detail = str(err or payload.get("detail") or detail) if isinstance(payload, dict) else detail
    except ValueError:
        pass
    await resp.aclose()
    hint = {
        401: "set `api_token` (or STACKLENS_API_TOKEN)",
        403: "the token lacks access to this model",
        404: "check `url` and `model`",
        413: "lower `context_window`",
    }.get(resp.status_code, "see the server's log")
    raise BackendError(f"model server {base_url} answered {resp.status_code}: {detail} ({hint})")


async def stream_once(text_coro: Any) -> AsyncIterator[str]:
    """A stream for backends that cannot stream: the whole text as one delta."""
    gens = await text_coro
    if gens:
        yield gens[0].text
