"""HTTP middleware for the FastAPI apps (bff, admin): every failure answers the error body of API.md.

``install(app)`` adds, in the Kratos order:

- outermost, the security headers every answer carries, and CORS for the origins configured
  (``tidings.pkg.middleware.browser``);
- recovery, outermost: the request deadline, a bound on the body size, and 500 INTERNAL with the trace id (never
  a stack trace) for any exception nothing else handled, logged with its stack;
- validation: FastAPI's request checks answer 400 INVALID_ARGUMENT naming the field (``member_ids.3``, the path
  without ``body``/``query``/``path``), a non-numeric path id included;
- handlers for ``TidingsError`` (raised by the app or brought back from a gRPC call) and for Starlette's own
  HTTP errors (an unknown route is 404 NOT_FOUND).

Recovery also counts each request by method, templated route, status and reason (``tidings.pkg.metrics``) and
writes one access log line (``event.dataset = <service>.access``) inside the request's span.

Recovery also opens the request's SERVER span (``tidings.pkg.trace.http_server_span``), named by the route once
routing chose one.
"""

from __future__ import annotations

import http
import time
from collections.abc import Sequence
from typing import cast
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import errors, log, metrics, trace
from tidings.pkg.errors import FieldViolation, TidingsError
from tidings.pkg.errors.http import retry_after, to_http_body
from tidings.pkg.middleware import browser, deadline, recovery

# Where FastAPI says a bad value came from; the field path clients see starts after it.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
# Where the error handlers leave the reason of the body they answered, for the metrics and the access log.
_REASON = "tidings.error_reason"
# Scraped and probed all the time: counted, but not worth an access log line each.
_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})


def install(
    app: FastAPI,
    *,
    request_timeout_s: float,
    max_body_bytes: int = 1 << 20,
    request_metrics: metrics.RequestMetrics | None = None,
    cors_origins: Sequence[str] = (),
) -> None:
    """Add the middleware and error handlers to ``app``; call once, before it serves.

    ``request_timeout_s`` is each request's deadline, passed on to the gRPC calls it makes; pages on
    ``cors_origins`` may call the app from a browser (none by default).
    """
    app.add_middleware(
        Recovery,
        request_timeout_s=request_timeout_s,
        max_body_bytes=max_body_bytes,
        request_metrics=request_metrics or metrics.for_registry(),
    )
    browser.install(app, cors_origins)
    for handled in (TidingsError, RequestValidationError, HTTPException):
        app.add_exception_handler(handled, _render)


# Where ``UntrustedTraceContext`` leaves the trace context it took off a request, for ``Recovery`` to link.
_CALLER_TRACE = "tidings.caller_trace"
# Query parameters whose values never reach a span (``url.query``): credentials.
_SECRET_QUERY = frozenset({"token", "access_token", "refresh_token"})


class UntrustedTraceContext:
    """For apps that clients reach: a caller's trace headers are taken off the request before the server span
    starts, so each request starts a trace of its own (the trace id in error bodies and logs is ours, not the
    caller's choice); ``Recovery`` links the caller's span to it."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope["headers"]
            taken = trace.http_carrier(headers)
            if taken:
                kept = [(name, value) for name, value in headers if name not in trace.HTTP_TRACE_HEADERS]
                scope = {**scope, "headers": kept, _CALLER_TRACE: taken}
        await self._app(scope, receive, send)


def _annotate_span(scope: Scope) -> None:
    """Link the caller's span (if ``UntrustedTraceContext`` took one) and redact credentials in ``url.query``."""
    span = trace.current_span()
    if not span.is_recording():
        return
    caller = scope.get(_CALLER_TRACE)
    if caller:
        link = trace.caller_link(caller)
        if link is not None:
            span.add_link(link.context)
    query = scope.get("query_string", b"")
    if query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        if any(key in _SECRET_QUERY for key, _ in pairs):
            span.set_attribute(
                "url.query", urlencode([(key, "REDACTED" if key in _SECRET_QUERY else value) for key, value in pairs])
            )


class Recovery:
    """Pure ASGI (so the deadline's context variable reaches the endpoint): deadline, body bound, last resort."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_timeout_s: float,
        max_body_bytes: int,
        request_metrics: metrics.RequestMetrics | None = None,
    ) -> None:
        self._app = app
        self._request_timeout_s = request_timeout_s
        self._max_body_bytes = max_body_bytes
        self._metrics = request_metrics or metrics.for_registry()
        self._log = log.get("http")
        self._access = log.get("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        with trace.http_server_span(scope) as span:
            _annotate_span(scope)
            if scope["type"] == "websocket":
                try:
                    await self._app(scope, receive, send)
                finally:
                    trace.http_route(span, scope, _matched(scope))
                return
            began = time.perf_counter()
            status = [500]
            try:
                await self._serve(scope, receive, send, status)
            finally:
                trace.http_route(span, scope, _matched(scope), status[0])
                self._observe(scope, _route(scope), status[0], time.perf_counter() - began)

    def _observe(self, scope: Scope, route: str, status: int, duration_s: float) -> None:
        reason = (scope.get("state") or {}).get(_REASON, "")
        if not reason and status >= 400:
            reason = errors.reason_for_code(status).name
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        self._metrics.http_observe(method, route, status, reason, duration_s)
        if route not in _QUIET_ROUTES:
            self._access.info(
                f"{method} {route} {status}",
                **{
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": scope["path"],
                    "http.response.status_code": status,
                    "error.code": reason or None,
                    "event.duration": int(duration_s * 1e9),
                },
            )

    async def _serve(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body_bytes:
            await _json(_noted(scope, self._too_large()))(scope, receive, _recording(send, status))
            return

        received = 0
        started = False

        async def receive_bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max_body_bytes:
                raise self._too_large()
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status[0] = message["status"]
            await send(message)

        with deadline.scope(self._request_timeout_s):
            try:
                await self._app(scope, receive_bounded, send_tracked)
            except Exception as exc:
                failure, warning = recovery.answer(exc)
                where = {"http_method": scope["method"], "url_path": scope["path"]}
                if warning is not None:
                    self._log.warning(warning, error=repr(exc), **where)
                if failure is None:
                    self._log.error("unhandled error in HTTP handler", exc_info=True, **where)
                if started:
                    raise  # too late for an error body: let the server cut the response short
                error = _noted(scope, failure or common_errors.internal("internal error"))
                await _json(error)(scope, receive, _recording(send, status))

    def _too_large(self) -> TidingsError:
        return errors.invalid_fields([FieldViolation("body", f"must be at most {self._max_body_bytes} bytes")])


async def _render(request: Request, exc: Exception) -> JSONResponse:
    return _json(_noted(request.scope, _as_error(request, exc)))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _noted(scope: Scope, error: TidingsError) -> TidingsError:
    """``error`` after leaving its reason in the request's state, where Recovery counts it."""
    scope.setdefault("state", {})[_REASON] = error.reason
    return error


def _recording(send: Send, status: list[int]) -> Send:
    async def recorded(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        await send(message)

    return recorded


def _matched(scope: Scope) -> str | None:
    """The templated path of the route that served the request (bounded, unlike the URL), if routing chose one."""
    path = getattr(scope.get("route"), "path", None)  # where routing leaves the route it chose
    return path if isinstance(path, str) else None


def _route(scope: Scope) -> str:
    """The request's route as metrics and access lines name it: its template, or ``unmatched``."""
    return _matched(scope) or "unmatched"


def _json(error: TidingsError) -> JSONResponse:
    body = to_http_body(error, trace.current_trace_id())
    return JSONResponse(body, status_code=error.code, headers=retry_after(error))


def _as_error(request: Request, exc: Exception) -> TidingsError:
    if isinstance(exc, TidingsError):
        return exc
    if isinstance(exc, RequestValidationError):
        return errors.invalid_fields([_violation(error) for error in exc.errors()])
    return _from_http_exception(request, cast(HTTPException, exc))


def _violation(error: dict[str, object]) -> FieldViolation:
    """One of FastAPI's validation errors as a field violation: ``("body", "member_ids", 3)`` -> ``member_ids.3``."""
    location = [str(part) for part in cast(tuple[object, ...], error["loc"])]
    if error["type"] == "json_invalid":
        location = ["body"]  # the rest of its location is a character offset, not a field
    elif len(location) > 1 and location[0] in _SOURCES:
        location = location[1:]
    return FieldViolation(".".join(location), str(error["msg"]))


def _from_http_exception(request: Request, exc: HTTPException) -> TidingsError:
    if isinstance(exc.__cause__, TidingsError):
        return exc.__cause__  # raised while FastAPI read the body (it wraps such errors in a 400)
    if exc.status_code in (404, 405) and exc.detail == http.HTTPStatus(exc.status_code).phrase:
        # No route has this method and path (Kratos answers both as 404 too).
        return common_errors.not_found(f"no route for {request.method} {request.url.path}")
    return errors.reason_for_code(exc.status_code).error(str(exc.detail))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
