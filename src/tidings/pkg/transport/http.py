"""HTTP serving: uvicorn driven by the app lifecycle, plus the health and metrics routes every process has."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator, Sequence
from typing import Literal

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp

from tidings import __version__
from tidings.pkg.conf import Listen
from tidings.pkg.errors.http import ERROR_RESPONSES
from tidings.pkg.health import Check, run_checks
from tidings.pkg.middleware import browser
from tidings.pkg.middleware import http as http_middleware
from tidings.pkg.transport.guard import ConnectionGuard


class _Uvicorn(uvicorn.Server):
    # The App owns SIGTERM/SIGINT for the whole process; uvicorn must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """Serves an ASGI app on ``listen``; binds in ``start`` so a taken port is an error we can name."""

    def __init__(
        self,
        name: str,
        app: ASGIApp,
        listen: Listen,
        *,
        drain_timeout_s: float = 5.0,
        ws_max_size: int = 16 * 1024 * 1024,
        guard: ConnectionGuard | None = None,
        keep_alive_s: int = 5,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.name = name
        self._app = app
        self._listen = listen
        # A WebSocket message larger than this is refused before it is buffered (close 1009).
        self._ws_max_size = ws_max_size
        # Header and body read timeouts and a per-address cap for ports that clients reach (see guard.py); an idle
        # keep-alive connection is closed after ``keep_alive_s``.
        self._guard = guard
        self._keep_alive_s = keep_alive_s
        # Whose forwarded headers name the client: uvicorn believes them from 127.0.0.1 unless told otherwise,
        # which would let anyone on this machine pick the address the per-address limits count.
        self._trusted_proxies = list(trusted_proxies)
        self._drain_timeout_s = drain_timeout_s
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self._listen.address}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._listen.host, self._listen.port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"{self.name}: cannot listen on {self._listen.address}: {exc.strerror}") from None
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(self._drain_timeout_s),
            server_header=False,
            # The sans-I/O WebSocket protocol: no keepalive or transfer tasks of its own per connection, so an idle
            # connection costs a fraction of the memory (our sessions ping and time out idle clients themselves).
            ws="websockets-sansio",
            ws_max_size=self._ws_max_size,
            # No permessage-deflate: its zlib streams take about 45 KiB per connection, most of an idle
            # connection's memory, to compress frames of a few hundred bytes that gain little from it.
            ws_per_message_deflate=False,
            # No protocol pings of the server's own: a timer per connection and a ping and pong every 20 s each,
            # for what the sessions already do (a client pings, and one silent past the idle timeout is closed).
            ws_ping_interval=None,
            http=self._guard.protocol() if self._guard is not None else "auto",
            timeout_keep_alive=self._keep_alive_s,
            proxy_headers=bool(self._trusted_proxies),
            forwarded_allow_ips=self._trusted_proxies or None,
        )
        self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=f"http {self.name}")
        try:
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError(f"{self.name}: HTTP server exited during start")
                await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = self._task = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    # Each dependency's check: ``ok``, or why it failed.
    checks: dict[str, str]


def ops_router(checks: Sequence[Check], *, metrics: bool = True) -> APIRouter:
    """``/healthz`` (the process runs), ``/readyz`` (its dependencies answer) and, with ``metrics``, ``/metrics``
    (Prometheus; public apps leave it to a listener of their own)."""
    router = APIRouter(tags=["operations"], responses=ERROR_RESPONSES)

    @router.get("/healthz")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency does not answer."}},
    )
    async def readyz() -> JSONResponse:
        results = await run_checks(checks)
        ready = all(result == "ok" for result in results.values())
        readiness = Readiness(status="ok" if ready else "unavailable", checks=results)
        return JSONResponse(readiness.model_dump(), status_code=200 if ready else 503)

    if metrics:

        @router.get("/metrics")
        async def scrape() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


# FastAPI's own telemetry off: the HTTP middleware (``tidings.pkg.middleware.http.Recovery``) opens each request's
# SERVER span, and only a sampled one gets attributes. FastAPI's built every attribute before sampling decided, and
# a span for each step of the request (dependencies, endpoint, serialization): about 15% of the bff's CPU per send.
# Metrics are Prometheus' (``tidings.pkg.metrics``), logs structlog's.
TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def api_app(
    title: str,
    description: str,
    checks: Sequence[Check],
    *,
    request_timeout_s: float,
    docs: bool = False,
    routers: Sequence[APIRouter] = (),
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """An API people or programs call (the bff's public one, the back office's): the shared middleware and error
    body, ``/healthz`` and ``/readyz``, then ``routers``. ``/openapi.json`` always; ``/docs`` and ``/redoc`` only
    with ``docs`` (their pages load scripts from a CDN, which must not run on a page's origin of ours). No
    ``/metrics``: that is the module's metrics listener's. Pages on ``cors_origins`` may call it from a browser."""
    app = FastAPI(
        title=title,
        version=__version__,
        description=description,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        telemetry=TELEMETRY,
    )
    http_middleware.install(app, request_timeout_s=request_timeout_s, cors_origins=cors_origins)
    app.include_router(ops_router(checks, metrics=False))
    for router in routers:
        app.include_router(router)
    return app


def ops_app(title: str, checks: Sequence[Check]) -> FastAPI:
    """The HTTP app of a module that serves nothing but operations endpoints."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, telemetry=TELEMETRY)
    browser.install(app)
    app.include_router(ops_router(checks))
    return app


def ops_server(name: str, listen: Listen, checks: Sequence[Check]) -> HttpServer:
    """An HTTP server with only the operations endpoints, for modules whose API is not HTTP."""
    return HttpServer(name, ops_app(f"tidings {name}", checks), listen)
