"""gRPC middleware as grpc.aio interceptors: recovery -> validation -> handler on the server, errors and deadlines
on the client.

Recovery also opens the call's server span, counts it (``tidings.pkg.metrics``) and writes its access log line
(``event.dataset = <service>.access``); the client interceptors open a client span per call and count it too.

Every kind of method is covered, with async handlers (a streamed answer may be yielded or written with
``await context.write``). Only unary requests are validated here; a client-streamed message is the handler's to
check (``validation.check``), so a bad frame need not end the stream.
"""

from __future__ import annotations

import hmac
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import grpc
from opentelemetry.trace import Span, StatusCode

from tidings.api.common.v1 import errors as common_errors
from tidings.pkg import log, metrics, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.errors.grpc import from_grpc_error, to_grpc_status
from tidings.pkg.middleware import deadline, recovery, validation

# Runs around one call: given the request (None when the client streams them) and the call's context.
Around = Callable[[Any, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]


def server_interceptors(
    *,
    request_timeout_s: float,
    request_metrics: metrics.RequestMetrics | None = None,
    trust_trace_context: bool = True,
    shared_secret: str | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """The server chain, outermost first. ``request_timeout_s`` bounds calls whose caller set no deadline.

    On a public port (``trust_trace_context=False``) a caller's trace context is only linked, never continued;
    with ``shared_secret`` every call but health checks must carry it (``SharedSecret``).
    """
    chain: list[grpc.aio.ServerInterceptor] = [
        Recovery(request_timeout_s, request_metrics, trusted=trust_trace_context)
    ]
    if shared_secret is not None:
        chain.append(SharedSecret(shared_secret))
    chain.append(Validation())
    return chain


def client_interceptors(request_metrics: metrics.RequestMetrics | None = None) -> list[grpc.aio.ClientInterceptor]:
    """For every channel to our services: one interceptor per kind of method, as grpc.aio wants them."""
    observed = request_metrics or metrics.for_registry()
    return [_UnaryUnary(observed), _UnaryStream(observed), _StreamUnary(observed), _StreamStream(observed)]


class Recovery(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Runs each call in a server span under its deadline and aborts with the status of whatever it raised.

    A ``TidingsError`` travels as it is; a gRPC error of a downstream call made without our client middleware is
    translated first; anything else is a bug: logged with its stack, answered 500 INTERNAL with the trace id only.
    """

    def __init__(
        self, request_timeout_s: float, request_metrics: metrics.RequestMetrics | None = None, *, trusted: bool = True
    ) -> None:
        self._request_timeout_s = request_timeout_s
        self._trusted = trusted
        self._metrics = request_metrics or metrics.for_registry()
        self._log = log.get("grpc")
        self._access = log.get("access")

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        return None if handler is None else _wrap(handler, partial(self._guard, handler_call_details.method))

    @asynccontextmanager
    async def _guard(self, method: str, _: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        left = context.time_remaining()
        service, name = metrics.split_method(method)
        started = time.perf_counter()
        outcome = _Outcome()
        with (
            trace.server_span(
                method.lstrip("/"),
                carrier,
                trusted=self._trusted,
                **{"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            ) as span,
            deadline.scope(self._request_timeout_s if left is None else left),
        ):
            try:
                try:
                    yield
                except grpc.aio.AbortError:
                    outcome.code = _code_name(context)  # the handler aborted the call itself
                    raise
                except TidingsError as error:
                    await self._abort(context, span, error, outcome)
                except grpc.RpcError as error:
                    await self._abort(context, span, from_grpc_error(error), outcome)
                except Exception as exc:
                    failure, warning = recovery.answer(exc)
                    if warning is not None:
                        self._log.warning(warning, error=repr(exc), rpc_method=method)
                    if failure is None:
                        self._log.error("unhandled error in gRPC handler", exc_info=True, rpc_method=method)
                        failure = common_errors.internal("internal error", trace_id=trace.current_trace_id())
                    await self._abort(context, span, failure, outcome)
                except BaseException:  # cancelled: the caller went away or its deadline passed
                    outcome.code = "CANCELLED"
                    raise
            finally:
                self._observe(method, span, outcome, time.perf_counter() - started)

    def _observe(self, method: str, span: Span, outcome: _Outcome, duration_s: float) -> None:
        span.set_attribute("rpc.grpc.status_code", outcome.code)
        self._metrics.grpc_observe(method, outcome.code, outcome.reason, duration_s, client=False)
        if not method.startswith("/grpc."):  # health checks and reflection: not worth a line each
            self._access.info(
                "grpc call",
                **{
                    "rpc.method": method,
                    "rpc.grpc.status_code": outcome.code,
                    "error.code": outcome.reason or None,
                    "event.duration": int(duration_s * 1e9),
                },
            )

    @staticmethod
    async def _abort(
        context: grpc.aio.ServicerContext, span: Span, error: TidingsError, outcome: _Outcome | None = None
    ) -> None:
        span.set_attribute("tidings.error.reason", error.reason)
        if error.code >= 500:
            span.set_status(StatusCode.ERROR, error.reason)
        status = to_grpc_status(error)
        if outcome is not None:
            outcome.code, outcome.reason = status.code.name, error.reason
        await context.abort_with_status(status)


class _Outcome:
    """How a call ended: its status code name and error reason (``""`` when none)."""

    __slots__ = ("code", "reason")

    def __init__(self) -> None:
        self.code = "OK"
        self.reason = ""


def _code_name(context: grpc.aio.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "UNKNOWN"


# The metadata key that carries the shared secret of internal listeners.
SECRET_METADATA = "x-tidings-internal-secret"  # noqa: S105 (the key's name, not a secret)
_HEALTH = "/grpc.health.v1.Health/"


class SharedSecret(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses (UNAUTHENTICATED) every call but health checks that lacks the listener's shared secret in the
    ``x-tidings-internal-secret`` metadata; compared in constant time, so timing tells nothing of it."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or str(handler_call_details.method).startswith(_HEALTH):
            return handler
        return _wrap(handler, self._checked)

    @asynccontextmanager
    async def _checked(self, _: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        given = next((value for key, value in context.invocation_metadata() or () if key == SECRET_METADATA), "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if not hmac.compare_digest(given_bytes, self._secret):
            raise common_errors.unauthenticated("this listener serves Tidings processes only")
        yield


class Validation(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Checks each unary request against its contract's rules before the handler sees it."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        return None if handler is None else _wrap(handler, _validated)


@asynccontextmanager
async def _validated(request: Any, _: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    if request is not None:
        validation.check(request)
    yield


def _wrap(handler: Any, around: Around) -> Any:
    """The same method handler with ``around`` entered for each call, for each of the four kinds of method."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _answering_once(handler.unary_unary, around, streamed_requests=False), **serializers
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream, around, streamed_requests=False), **serializers
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _answering_once(handler.stream_unary, around, streamed_requests=True), **serializers
        )
    return grpc.stream_stream_rpc_method_handler(
        _streaming(handler.stream_stream, around, streamed_requests=True), **serializers
    )


def _answering_once(behavior: Any, around: Around, *, streamed_requests: bool) -> Any:
    """A coroutine handler: ``around`` encloses awaiting it (given the request, unless the client streams them)."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(None if streamed_requests else request, context):
            return await behavior(request, context)

    return call


def _streaming(behavior: Any, around: Around, *, streamed_requests: bool) -> Any:
    """A handler that streams its answer, by ``yield`` or by ``await context.write(...)`` (as grpc_health's Watch
    does). grpc.aio tells the two apart by the kind of function, so the wrapper is of the same kind."""
    if not inspect.isasyncgenfunction(behavior):
        return _answering_once(behavior, around, streamed_requests=streamed_requests)

    async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with around(None if streamed_requests else request, context):
            async for response in behavior(request, context):
                yield response

    return call


def _outgoing(details: grpc.aio.ClientCallDetails, carrier: dict[str, str] | None = None) -> grpc.aio.ClientCallDetails:
    """The call with the current deadline's time left (when sooner than its own timeout) and the trace context
    (``carrier``: the client span's; else the current span's)."""
    timeout = details.timeout
    left = deadline.remaining()
    if left is not None:
        if left <= 0:
            method = details.method.decode() if isinstance(details.method, bytes) else details.method
            raise common_errors.deadline_exceeded(f"no time left to call {method}")
        timeout = left if timeout is None else min(timeout, left)
    if carrier is None:
        carrier = {}
        trace.inject(carrier)
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in carrier.items():
        metadata[key] = value
    return grpc.aio.ClientCallDetails(details.method, timeout, metadata, details.credentials, details.wait_for_ready)


class _ClientCall:
    """One outgoing call's client span and metrics, ended once the call settles (a stream: when it ends)."""

    def __init__(self, request_metrics: metrics.RequestMetrics, details: grpc.aio.ClientCallDetails) -> None:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        service, name = metrics.split_method(method)
        self._metrics = request_metrics
        self._method = method
        self._started = time.perf_counter()
        self.span, carrier = trace.start_client_span(
            method.lstrip("/"), **{"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        )
        try:
            self.details = _outgoing(details, carrier)
        except BaseException as error:
            self.finish(error)
            raise

    def finish(self, error: BaseException | None = None) -> None:
        code, reason = "OK", ""
        if isinstance(error, TidingsError):
            code, reason = to_grpc_status(error).code.name, error.reason
            if error.code >= 500:
                self.span.set_status(StatusCode.ERROR, error.reason)
            self.span.set_attribute("tidings.error.reason", error.reason)
        elif isinstance(error, BaseException):
            code = "CANCELLED"
            self.span.set_status(StatusCode.ERROR, type(error).__name__)
        self.span.set_attribute("rpc.grpc.status_code", code)
        self.span.end()
        self._metrics.grpc_observe(self._method, code, reason, time.perf_counter() - self._started, client=True)


async def _settled(call: Any, observed: _ClientCall) -> Any:
    """Wait for a unary response; a failed call raises the downstream ``TidingsError``."""
    try:
        try:
            await call
        except grpc.RpcError as error:
            raise from_grpc_error(error) from error
    except BaseException as error:
        observed.finish(error)
        raise
    observed.finish()
    return call


async def _responses(call: Any, observed: _ClientCall) -> AsyncIterator[Any]:
    """The responses of a streaming call; a failed call raises the downstream ``TidingsError``."""
    failure: BaseException | None = None
    try:
        async for response in call:
            yield response
    except grpc.RpcError as error:
        failure = from_grpc_error(error)
        raise failure from error
    except BaseException as error:
        failure = error
        raise
    finally:
        observed.finish(failure)


class _ClientInterceptor:
    def __init__(self, request_metrics: metrics.RequestMetrics) -> None:
        self._metrics = request_metrics


class _UnaryUnary(_ClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        observed = _ClientCall(self._metrics, client_call_details)
        return await _settled(await _started(continuation, observed, request), observed)


class _UnaryStream(_ClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        observed = _ClientCall(self._metrics, client_call_details)
        return _responses(await _started(continuation, observed, request), observed)


class _StreamUnary(_ClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        observed = _ClientCall(self._metrics, client_call_details)
        return await _settled(await _started(continuation, observed, request_iterator), observed)


class _StreamStream(_ClientInterceptor, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        observed = _ClientCall(self._metrics, client_call_details)
        return _responses(await _started(continuation, observed, request_iterator), observed)


async def _started(continuation: Any, observed: _ClientCall, request: Any) -> Any:
    try:
        return await continuation(observed.details, request)
    except BaseException as error:
        observed.finish(error)
        raise
