"""The bff's transports: the public HTTP app (its ASGI wrapper for untrusted callers) and its limits."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from tidings.pkg.health import Check
from tidings.pkg.middleware import http as http_middleware
from tidings.pkg.transport.http import api_app


def http_app(
    checks: Sequence[Check],
    *,
    request_timeout_s: float,
    docs: bool = False,
    routers: Sequence[APIRouter] = (),
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The public API (API.md); pages on ``cors_origins`` may call it from a browser."""
    return api_app(
        "Tidings API",
        "The public HTTP API of Tidings. Every id is a decimal string; errors share one body.",
        checks,
        request_timeout_s=request_timeout_s,
        docs=docs,
        routers=routers,
        cors_origins=cors_origins,
    )


def public(app: ASGIApp) -> ASGIApp:
    """``app`` as served to clients: their trace context starts a new trace (kept as a link), never continued."""
    return http_middleware.UntrustedTraceContext(app)
