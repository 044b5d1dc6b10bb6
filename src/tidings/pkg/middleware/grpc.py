"""gRPC middleware as grpc.aio interceptors: recovery -> validation -> handler on the server, errors and deadlines
on the client.

Every kind of method is covered, with async handlers (a streamed answer may be yielded or written with
``await context.write``). Only unary requests are validated here; a client-streamed message is the handler's to
check (``validation.check``), so a bad frame need not end the stream.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import grpc
from opentelemetry.trace import Span, StatusCode

from tidings.pkg import errors, log, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.errors.grpc import from_grpc_error, to_grpc_status
from tidings.pkg.middleware import deadline, validation

# Runs around one call: given the request (None when the client streams them) and the call's context.
Around = Callable[[Any, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]


def server_interceptors(*, request_timeout_s: float) -> list[grpc.aio.ServerInterceptor]:
    """The server chain, outermost first. ``request_timeout_s`` bounds calls whose caller set no deadline."""
    return [Recovery(request_timeout_s), Validation()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For every channel to our services: one interceptor per kind of method, as grpc.aio wants them."""
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]


class Recovery(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Runs each call in a server span under its deadline and aborts with the status of whatever it raised.

    A ``TidingsError`` travels as it is; a gRPC error of a downstream call made without our client middleware is
    translated first; anything else is a bug: logged with its stack, answered 500 INTERNAL with the trace id only.
    """

    def __init__(self, request_timeout_s: float) -> None:
        self._request_timeout_s = request_timeout_s
        self._log = log.get("grpc")

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        return None if handler is None else _wrap(handler, partial(self._guard, handler_call_details.method))

    @asynccontextmanager
    async def _guard(self, method: str, _: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        carrier = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        left = context.time_remaining()
        with (
            trace.server_span(method, carrier) as span,
            deadline.scope(self._request_timeout_s if left is None else left),
        ):
            try:
                yield
            except grpc.aio.AbortError:
                raise  # the handler aborted the call itself
            except TidingsError as error:
                await self._abort(context, span, error)
            except grpc.RpcError as error:
                await self._abort(context, span, from_grpc_error(error))
            except Exception:
                self._log.error("unhandled error in gRPC handler", exc_info=True, rpc_method=method)
                trace_id = trace.current_trace_id()
                await self._abort(context, span, errors.common.internal("internal error", trace_id=trace_id))

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, span: Span, error: TidingsError) -> None:
        span.set_attribute("tidings.error.reason", error.reason)
        if error.code >= 500:
            span.set_status(StatusCode.ERROR, error.reason)
        await context.abort_with_status(to_grpc_status(error))


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


def _outgoing(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """The call with the current deadline's time left (when sooner than its own timeout) and the trace context."""
    timeout = details.timeout
    left = deadline.remaining()
    if left is not None:
        if left <= 0:
            method = details.method.decode() if isinstance(details.method, bytes) else details.method
            raise errors.common.deadline_exceeded(f"no time left to call {method}")
        timeout = left if timeout is None else min(timeout, left)
    carrier: dict[str, str] = {}
    trace.inject(carrier)
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in carrier.items():
        metadata[key] = value
    return grpc.aio.ClientCallDetails(details.method, timeout, metadata, details.credentials, details.wait_for_ready)


async def _settled(call: Any) -> Any:
    """Wait for a unary response; a failed call raises the downstream ``TidingsError``."""
    try:
        await call
    except grpc.RpcError as error:
        raise from_grpc_error(error) from error
    return call


async def _responses(call: Any) -> AsyncIterator[Any]:
    """The responses of a streaming call; a failed call raises the downstream ``TidingsError``."""
    try:
        async for response in call:
            yield response
    except grpc.RpcError as error:
        raise from_grpc_error(error) from error


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await _settled(await continuation(_outgoing(client_call_details), request))


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return _responses(await continuation(_outgoing(client_call_details), request))


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await _settled(await continuation(_outgoing(client_call_details), request_iterator))


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return _responses(await continuation(_outgoing(client_call_details), request_iterator))
