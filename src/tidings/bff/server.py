"""The bff's transports: the public HTTP app (its ASGI wrapper for untrusted callers) and its limits."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from tidings import __version__
from tidings.pkg.health import Check
from tidings.pkg.middleware import http as http_middleware
from tidings.pkg.transport.http import TELEMETRY, ops_router


def http_app(
    checks: Sequence[Check], *, request_timeout_s: float, docs: bool = False, routers: Sequence[APIRouter] = ()
) -> FastAPI:
    """The public API. ``/openapi.json`` always; ``/docs`` and ``/redoc`` only with ``docs`` (their pages load
    scripts from a CDN, which must not run on the chat client's origin). No ``/metrics``: that is the metrics
    listener's."""
    app = FastAPI(
        title="Tidings API",
        version=__version__,
        description="The public HTTP API of Tidings. Every id is a decimal string; errors share one body.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        telemetry=TELEMETRY,
    )
    http_middleware.install(app, request_timeout_s=request_timeout_s)
    app.include_router(ops_router(checks, metrics=False))
    for router in routers:
        app.include_router(router)
    return app


def public(app: ASGIApp) -> ASGIApp:
    """``app`` as served to clients: their trace context starts a new trace (kept as a link), never continued."""
    return http_middleware.UntrustedTraceContext(app)
