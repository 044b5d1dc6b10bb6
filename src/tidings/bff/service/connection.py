"""What the WebSocket and the gRPC stream share: authenticating a connection and serving one client frame.

A connection outlives any request deadline, so each frame gets its own span (its own trace id, quoted in an error
frame) and its own deadline (the module's request timeout), passed on to the calls it makes.
"""

from __future__ import annotations

import asyncio

from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Identity
from tidings.bff.biz.ports import AccountRepo
from tidings.bff.biz.realtime.events import Failure, Inbound, Ref
from tidings.bff.biz.realtime.frames import Frames
from tidings.bff.biz.realtime.session import Session
from tidings.pkg import log, trace
from tidings.pkg.errors import TidingsError
from tidings.pkg.middleware import deadline

_log = log.get("realtime")


async def authenticate(accounts: AccountRepo, token: str, *, timeout_s: float) -> Identity:
    """The identity behind ``token`` (401 for a missing, forged, expired or revoked one), under ``timeout_s``."""
    token = token.strip()
    if not token or len(token) > 4096:
        raise common_errors.unauthenticated("send a valid access token")
    with deadline.scope(timeout_s):
        try:
            async with asyncio.timeout(timeout_s):
                return await accounts.identify(token)
        except TimeoutError:
            raise common_errors.unavailable("cannot verify the token now; retry shortly") from None


async def answer(frames: Frames, session: Session, frame: Inbound, *, transport: str, timeout_s: float) -> None:
    """Serve one client frame and queue its answer, or the error frame that says why it failed."""
    with trace.server_span(f"{transport} {type(frame).__name__}", {}):
        try:
            with deadline.scope(timeout_s):
                async with asyncio.timeout(timeout_s):
                    reply = await frames.answer(session, frame)
        except TidingsError as error:
            reply = Failure(frame.ref, error, trace.current_trace_id())
        except TimeoutError:
            late = common_errors.deadline_exceeded("the frame was not served in time")
            reply = Failure(frame.ref, late, trace.current_trace_id())
        except Exception:
            _log.error("unhandled error serving a frame", exc_info=True, frame=type(frame).__name__)
            reply = Failure(frame.ref, common_errors.internal("internal error"), trace.current_trace_id())
    if reply is not None:
        session.offer(reply)


def refuse(session: Session, ref: Ref, error: TidingsError, *, transport: str) -> None:
    """Answer a frame that could not be read (400) with an error frame; the connection stays open."""
    with trace.server_span(f"{transport} bad frame", {}):
        session.offer(Failure(ref, error, trace.current_trace_id()))
