"""The request body limit both HTTP services share (membership service, `stacklens serve`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import PayloadTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Each service answers the refusal in its own error shape (``{"detail"}``, or OpenAI's ``{"error"}``).
Refusal = Callable[[PayloadTooLargeError], ASGIApp]


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies over ``limit`` bytes, declared or sent in chunks.

    The body is read here, up to the limit, and replayed to the app: refusing from inside the
    app's ``receive`` would reach FastAPI's body parser as a parse error (400), not as a 413."""

    def __init__(self, app: ASGIApp, limit: int, refuse: Refusal, message: str) -> None:
        self.app, self.limit, self.refuse = app, limit, refuse
        self.error = PayloadTooLargeError(message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.refuse(self.error)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left while sending: nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self.refuse(self.error)(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # later calls wait for the disconnect (see completion's `unless_gone`)
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
