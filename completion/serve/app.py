"""`stacklens serve`: one GPU machine serving many editors. The model loads once (lifespan);
OpenAI-compatible /v1/completions, TGI-compatible /generate and /generate_stream, /healthz."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from stacklens.auth import bearer_token_matches
from stacklens.errors import PayloadTooLargeError, StacklensError
from stacklens.http import ASGIApp, BodyLimit, Receive, Scope, Send, validation_message

from .asgi import ClientGone, error_response
from .model import ModelService, ServerConfig
from .routes import add_generation_routes

log = logging.getLogger(__name__)


def _too_large(exc: PayloadTooLargeError) -> ASGIApp:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(scope["path"], exc.http_status, str(exc))(scope, receive, send)

    return refuse


def create_app(config: ServerConfig) -> FastAPI:
    service = ModelService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()  # the model loads once, before the first request
        yield
        if service.batcher is not None:
            await service.batcher.aclose()
        await service.backend.aclose()

    def authorize(request: Request) -> None:
        if config.token and not bearer_token_matches(request.headers.get("authorization", ""), config.token):
            raise _AuthError()

    app = FastAPI(title="stacklens completion server", lifespan=lifespan)
    app.state.service = service
    limit = config.max_body_bytes
    message = f"request body over {limit} bytes: send less context or raise --max-body-bytes"
    app.add_middleware(BodyLimit, limit=limit, refuse=_too_large, message=message)

    @app.exception_handler(_AuthError)
    async def _auth(request: Request, exc: _AuthError) -> JSONResponse:
        resp = error_response(
            request.url.path,
            401,
            "missing or wrong bearer token: send `Authorization: Bearer <token>`",
            "authentication_error",
        )
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(StacklensError)
    async def _stacklens(request: Request, exc: StacklensError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(request.url.path, exc.http_status, str(exc))

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> JSONResponse:
        service.stats["abandoned"] += 1
        log.info("%s %s: the client left; its generation was stopped", request.method, request.url.path)
        return error_response(request.url.path, 499, "the client closed the connection")  # nobody reads this

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # Our fault, never the client's: the traceback goes to the log (Starlette re-raises).
        message = f"internal error ({type(exc).__name__}): see the server log"
        return error_response(request.url.path, 500, message, "server_error")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, an unknown route) in our error shape.
        resp = error_response(request.url.path, exc.status_code, str(exc.detail))
        resp.headers.update(exc.headers or {})
        return resp

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 400 as OpenAI, 422 on the TGI routes (why: stacklens/http.py).
        return error_response(request.url.path, 400, validation_message(exc.errors()))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": config.model,
            "template": service.template.name if service.template else None,
            "device": service.backend.device,
            "context_length": service.context_length,
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": config.model, "object": "model", "owned_by": "stacklens"}],
        }

    add_generation_routes(app, service, authorize)
    return app


class _AuthError(Exception):
    pass


__all__ = ["ModelService", "ServerConfig", "create_app"]
