"""The bff's transports: the public HTTP app and the gRPC server for native clients and the push job."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from tidings import __version__
from tidings.pkg.health import Check
from tidings.pkg.middleware import http as http_middleware
from tidings.pkg.transport.http import ops_router


def http_app(checks: Sequence[Check], *, request_timeout_s: float, routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="Tidings API",
        version=__version__,
        description="The public HTTP API of Tidings. Every id is a decimal string; errors share one body.",
    )
    http_middleware.install(app, request_timeout_s=request_timeout_s)
    app.include_router(ops_router(checks))
    for router in routers:
        app.include_router(router)
    return app
