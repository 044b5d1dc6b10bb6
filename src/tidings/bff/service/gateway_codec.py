"""gRPC stream frames (``tidings.gateway.v1``): ``ConnectRequest`` bytes in, checked against the contract's rules;
``ConnectResponse`` out. Bytes that are no ``ConnectRequest`` get an error frame, as on the WebSocket, instead of
ending the stream as grpc's own decoding would. The twin of ``ws_codec``, which speaks JSON.
"""

from __future__ import annotations

from typing import assert_never

from google.protobuf.message import DecodeError

from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bff.biz.realtime.events import (
    Envelope,
    Event,
    Failure,
    Inbound,
    Marked,
    MarkRead,
    Outbound,
    Ping,
    Pong,
    Ready,
    Ref,
    SendText,
    Sent,
    StartTyping,
)
from tidings.bff.codec import event_to_pb
from tidings.bff.service.connection import BadFrame, Codec
from tidings.pkg import errors
from tidings.pkg.errors import FieldViolation, TidingsError
from tidings.pkg.middleware import validation
from tidings.service.chat.store.records import message_to_pb

TRANSPORT = "grpc"


def decode(raw: bytes, max_bytes: int) -> pb.ConnectRequest:
    """The client frame in ``raw``, checked against its contract; ``BadFrame`` (400 naming the field, and the
    frame's ref when it could be read) otherwise."""
    try:
        request = pb.ConnectRequest.FromString(raw)
    except DecodeError:
        raise BadFrame(_invalid_frame("must be one tidings.gateway.v1.ConnectRequest")) from None
    if len(raw) > max_bytes:
        raise BadFrame(_invalid_frame(f"must be at most {max_bytes} bytes"), request.ref)
    try:
        validation.check(request)
    except TidingsError as error:
        raise BadFrame(error, request.ref) from None
    return request


def _invalid_frame(description: str) -> TidingsError:
    return errors.invalid_fields([FieldViolation("frame", description)])


def inbound(request: pb.ConnectRequest) -> Inbound:
    """A validated request as the frame it carries."""
    ref = request.ref
    match request.WhichOneof("frame"):
        case "send":
            send = request.send
            return SendText(send.conversation_id, send.client_msg_id, send.text, ref)
        case "read":
            return MarkRead(request.read.conversation_id, request.read.seq, ref)
        case "typing":
            return StartTyping(request.typing.conversation_id, ref)
        case _:
            return Ping(ref)


def encode(frame: Outbound) -> pb.ConnectResponse | None:
    """A server frame as the stream carries it (None for ``ready``: gRPC has ``x-session-id`` instead)."""
    match frame:
        case Envelope():
            return frame.encoded(TRANSPORT, _event_response)
        case Ready():
            return None
        case Pong(ref):
            return pb.ConnectResponse(ref=_ref(ref), pong=pb.Pong())
        case Sent(ref, message, duplicate):
            ack = pb.SendAck(message=message_to_pb(message), duplicate=duplicate)
            return pb.ConnectResponse(ref=_ref(ref), sent=ack)
        case Marked(ref, conversation_id, read_seq):
            marked = pb.ReadAck(conversation_id=conversation_id, read_seq=read_seq)
            return pb.ConnectResponse(ref=_ref(ref), marked=marked)
        case Failure(ref, error, trace_id):
            failure = pb.ErrorFrame(
                code=error.code,
                reason=error.reason,
                message=error.message,
                metadata=error.metadata,
                trace_id=trace_id,
            )
            return pb.ConnectResponse(ref=_ref(ref), error=failure)
        case _:
            assert_never(frame)


def envelope(event: Event, event_pb: pb.Event) -> Envelope:
    """``event`` on its way to many sessions, with the protobuf it came as: streams send it as it came."""
    return Envelope(event, **{TRANSPORT: pb.ConnectResponse(event=event_pb)})


def _event_response(event: Event) -> pb.ConnectResponse:
    return pb.ConnectResponse(event=event_to_pb(event))


def _ref(ref: Ref) -> int:
    return ref if isinstance(ref, int) else 0


def _decode_frame(raw: bytes, max_bytes: int) -> Inbound:
    return inbound(decode(raw, max_bytes))


CODEC: Codec[bytes, pb.ConnectResponse] = Codec(TRANSPORT, _decode_frame, encode)
