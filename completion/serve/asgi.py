"""HTTP plumbing of the completion server: error bodies, server-sent events, and stopping work
for a client that has gone (the body limit is `stacklens.http.BodyLimit`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

from stacklens.http import Receive

T = TypeVar("T")


# The routes that imitate TGI answer in its error shape, the others in OpenAI's
# (tests/completion/wire_standins.py shows both; why the statuses differ: stacklens/http.py).
TGI_PATHS = frozenset({"/generate", "/generate_stream"})
_TGI_TYPES = {
    "invalid_request_error": "validation",
    "authentication_error": "authentication",
    "server_error": "generation",
}


def tgi_error(message: str, kind: str) -> dict[str, str]:
    """TGI's error object (also its failed-stream event): ``error`` is a string."""
    return {"error": message, "error_type": _TGI_TYPES.get(kind, kind)}


def error_response(path: str, status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    """The error for a request to ``path``, in the wire format that route imitates."""
    if path in TGI_PATHS:
        # TGI refuses every invalid input with 422 where OpenAI answers 400.
        return JSONResponse(tgi_error(message, kind), status_code=422 if status == 400 else status)
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


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
