"""What both HTTP services (membership service, `stacklens serve`) share: the request body
limit, and the one reading of a request body that fails its route's schema.

An invalid body gets the status of the API the route imitates, each service in its own shape:

- the membership service is an API of our own, in FastAPI's convention: 422 with
  ``{"detail": [problems]}``, each problem naming its field (``loc``) and echoing the input; its
  OpenAPI schema documents the 422, and its clients (membership/client.py, the search page) print
  ``detail`` whatever its type;
- the completion server's ``/v1/*`` routes imitate OpenAI, which answers every refused request
  400 ``invalid_request_error`` (so do vLLM and llama.cpp's server), in one readable message;
- its ``/generate*`` routes imitate TGI, which answers every refused input 422
  ``{"error": str, "error_type": "validation"}``: llm-ls reads ``error`` as a string and shows
  nothing useful for any other shape.

The status is the client's contract; the problems and the message come from here, for both.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
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


def printable(value: Any) -> Any:
    """``value`` with what JSON cannot carry made visible: NaN and infinities as text, lone
    surrogates and undecodable bytes as escapes. A validation problem echoes the offending input,
    which may be any of them (encoding one made a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):  # a body that is not JSON is validated (and echoed) as bytes
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    return value


def validation_problems(errors: Iterable[Any]) -> list[Any]:
    """FastAPI's ``RequestValidationError.errors()`` made JSON-safe (what a 422 ``detail`` holds;
    `fastapi.encoders.jsonable_encoder` then turns a validator's exception in ``ctx`` into JSON)."""
    return [printable(e) for e in errors]


def validation_message(errors: Iterable[Any]) -> str:
    """The same problems in one line: ``invalid request: field: message; ...``."""
    parts = []
    for err in validation_problems(errors):
        # Union members show up in `loc` as "function-after[...]" or "list[str]": not a field.
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body" and "[" not in str(p))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "invalid request: " + "; ".join(parts)
