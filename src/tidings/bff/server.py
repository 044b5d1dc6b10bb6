"""The bff's transports: the public HTTP app and the gRPC server for native clients and the push job."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from tidings import __version__
from tidings.pkg.health import Check
from tidings.pkg.middleware import http as http_middleware
from tidings.pkg.transport.http import ops_router


def http_app(checks: Sequence[Check], *, request_timeout_s: float) -> FastAPI:
    app = FastAPI(title="Tidings API", version=__version__)
    http_middleware.install(app, request_timeout_s=request_timeout_s)
    app.include_router(ops_router(checks))
    return app
