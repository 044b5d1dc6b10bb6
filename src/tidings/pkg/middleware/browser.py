"""What every answer of an HTTP app tells a browser: security headers on all of them, and CORS for listed origins.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` on every answer;
- a Content-Security-Policy on every answer that brings none of its own: ``default-src 'none'; frame-ancestors
  'none'`` (a JSON answer loads nothing and is never framed). The web pages bring theirs
  (``tidings.pkg.transport.web``), which is kept;
- CORS (Starlette's ``CORSMiddleware``) only for the origins configured: none by default, never ``*``, never with
  credentials. A page on another origin sends its bearer token in ``Authorization``; cookies stay same-site.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CONTENT_SECURITY_POLICY,
}
# What a cross-origin page may send and read: its token, and when to try again after a 429.
CORS_REQUEST_HEADERS = ("Authorization",)
CORS_RESPONSE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining")
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# How long a browser may reuse a preflight's answer.
CORS_MAX_AGE_S = 600
# The answers that start a response: a request's, and a refused WebSocket handshake's.
_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})


class SecurityHeaders:
    """Pure ASGI: adds ``SECURITY_HEADERS`` to every answer, leaving any of them the answer already sets."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] in _STARTS:
                message["headers"] = list(message.get("headers", ()))
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self._app(scope, receive, send_secured)


def install(app: Starlette, cors_origins: Sequence[str] = ()) -> None:
    """Add the security headers to ``app``, outermost, so that every answer has them (the last-resort 500 too);
    with ``cors_origins`` (exact ``scheme://host[:port]``), CORS for those origins just inside them."""
    if cors_origins:
        if "*" in cors_origins:
            raise ValueError("CORS origins must be listed one by one: '*' is not allowed")
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_REQUEST_HEADERS),
            expose_headers=list(CORS_RESPONSE_HEADERS),
            allow_credentials=False,
            max_age=CORS_MAX_AGE_S,
        )
    app.add_middleware(SecurityHeaders)
