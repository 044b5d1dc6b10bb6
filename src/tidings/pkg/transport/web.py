"""A browser page of ours (the chat client, the back office's console): its page and its scripts and styles, all
from a package of Tidings itself.

Every answer carries a strict Content-Security-Policy: scripts and styles only from this origin (no inline code,
no eval), network calls only to this origin (the API and its WebSocket), no framing. User text is rendered as text
by the page; the policy is the second line of defence should a bug ever let markup through. The headers every
answer of the app carries (``nosniff``, no referrer) come from its middleware (``tidings.pkg.middleware.browser``),
which keeps this policy in place of the API's.
"""

from __future__ import annotations

import os
from importlib import resources

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # A new deploy is picked up on the next load; the files are small and answer 304 when unchanged.
    "Cache-Control": "no-cache",
}


class _WebFiles(StaticFiles):
    """Starlette's static files (ETag, 304, HEAD) with the security headers on every answer."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI, package: str, *, at: str = "") -> None:
    """Serve ``package``'s ``web/index.html`` at ``{at}/`` and its other files under ``{at}/web``; the API routes are
    left as they are."""
    files = _WebFiles(packages=[(package, "web")])
    page = resources.files(package) / "web" / "index.html"

    # HEAD too: uptime checks and link previews ask with it.
    @app.api_route(f"{at}/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(page), media_type="text/html", headers=SECURITY_HEADERS)

    app.mount(f"{at}/web", files, name=f"{package} web")
