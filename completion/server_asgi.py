"""HTTP plumbing of the completion server: the body limit, error bodies, server-sent events, and
stopping work for a client that has gone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def too_large(limit: int) -> JSONResponse:
    return error_response(
        413, f"request body over {limit} bytes: send less context or raise --max-body-bytes"
    )


def sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies over the limit, declared or sent in chunks.

    The body is read here, in full, before the app sees it: refusing from inside the app's
    ``receive`` would reach FastAPI's body parser as a parse error (400), not as a 413.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await too_large(self.limit)(scope, receive, send)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left while sending: nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                return await too_large(self.limit)(scope, receive, send)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # later calls wait for the disconnect (see `unless_gone`)
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class ClientGone(Exception):
    """The client closed the connection before its answer was ready; the work was stopped."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_gone(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it if the client disconnects first (then raises ClientGone).

    Nothing else reads a non-streaming request once its body is parsed, so the next message the
    server has for it is ``http.disconnect``: when the client goes, or when the response is sent.
    Cancelling the work is what stops the model (see Batcher and TransformersBackend.generate).
    """
    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        raise ClientGone()
    finally:
        for task in (job, gone):
            if not task.done():
                task.cancel()
        await asyncio.gather(gone, return_exceptions=True)
