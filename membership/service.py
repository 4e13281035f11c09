"""The membership service: FastAPI app factory, lifespan, token check, limits, error mapping.

The store is opened once in the lifespan and shared. Errors of the `StacklensError` hierarchy are
converted here, once, into their ``http_status`` with ``{"detail": message}``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from index.protocol import IndexStore
from stacklens.auth import bearer_token_matches
from stacklens.errors import ConfigError, PayloadTooLargeError, StacklensError
from stacklens.http import BodyLimit, validation_problems

from .evidence_routes import evidence_api
from .limits import ServiceLimits
from .open import CheckerSettings, open_store, store_checker
from .page import page_router
from .policy import MatchPolicy, PolicySettings
from .routes import ServiceState, api, docs_router, health
from .settings import QuerySettings

log = logging.getLogger(__name__)


def _refuse(exc: PayloadTooLargeError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)


def _token_dependency(token: str | None) -> Callable[[Request], Awaitable[None]]:
    async def require_token(request: Request) -> None:
        if token is None:
            return
        if not bearer_token_matches(request.headers.get("authorization", ""), token):
            raise HTTPException(
                401,
                "missing or wrong bearer token: send `Authorization: Bearer <token>` "
                "(code-search --token / STACKLENS_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token


def create_app(
    open_store: Callable[[], IndexStore],
    *,
    settings: QuerySettings | None = None,
    limits: ServiceLimits | None = None,
    token: str | None = None,
    policy: PolicySettings | None = None,
) -> FastAPI:
    """The membership service; ``open_store`` runs once, at start-up. ``policy`` decides the
    verdict `/v1/evidence` (the stack search page) shows for each match."""
    limits = limits or ServiceLimits()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        checker = store_checker(open_store(), settings)
        app.state.service = ServiceState(checker.store, checker, limits)
        log.info("membership service ready: %s", checker.describe())
        try:
            yield
        finally:
            checker.close()

    # The schema and the documentation pages are routes of our own, behind the token like the
    # API: FastAPI's built-in ones cannot take a dependency.
    app = FastAPI(
        title="stacklens membership service",
        version="1",
        description="Is this code in the training corpus, where, and under which licence?",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.policy = MatchPolicy(policy or PolicySettings())
    guarded = [Depends(_token_dependency(token))]
    app.include_router(api, dependencies=guarded)
    app.include_router(evidence_api, dependencies=guarded)
    app.include_router(docs_router(app), dependencies=guarded)
    app.include_router(health)
    app.include_router(page_router)  # the page holds no data: it asks the API, with the token

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # 422 and the problems themselves: FastAPI's convention (why: stacklens/http.py).
        problems = jsonable_encoder(validation_problems(exc.errors()))
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(StacklensError)
    async def stacklens_error(request: Request, exc: StacklensError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s: internal error", request.method, request.url.path)
        detail = f"internal error: {type(exc).__name__}: {exc}"
        return JSONResponse({"detail": detail}, status_code=500)

    limit = limits.max_body_bytes
    message = f"the request body is larger than the {limit:,}-byte limit; send less per request"
    app.add_middleware(BodyLimit, limit=limit, refuse=_refuse, message=message)
    return app


def store_opener(index: str | None, es_url: str | None, es_index: str | None) -> Callable[[], IndexStore]:
    """A function that opens the embedded index or the Elasticsearch store the flags name."""
    try:
        where = CheckerSettings(index=index, es_url=es_url, es_index=es_index or "stacklens")
    except ValueError as exc:
        raise ConfigError(f"invalid option: {exc}") from None
    if not where.configured:
        raise ConfigError("name the index: --index PATH, or --es-url URL --es-index NAME")
    return lambda: open_store(where)


def serve(
    open_store: Callable[[], IndexStore],
    *,
    host: str = "127.0.0.1",
    port: int = 8400,
    token: str | None = None,
    settings: QuerySettings | None = None,
    limits: ServiceLimits | None = None,
    policy: PolicySettings | None = None,
) -> None:
    """Run the service until interrupted (uvicorn, one process); the process's entry point, so
    it also sets up logging to stderr."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s: %(message)s")
    # The Elasticsearch client logs every failed attempt with a traceback; our errors say it.
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    open_store().close()  # fail here, with the store's own message, rather than in the lifespan
    app = create_app(open_store, settings=settings, limits=limits, token=token, policy=policy)
    uvicorn.run(app, host=host, port=port, log_level="info")


@contextlib.contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread (tests, benchmarks, an embedding process);
    yields its base URL. ``port=0`` takes a free port, bound before the URL is handed out."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise StacklensError("the membership service failed to start; see its log")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
