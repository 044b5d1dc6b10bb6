"""WebSocket frames as JSON (API.md): client frames in, checked like request bodies; server frames out.

Client -> server: ``ping``, ``typing`` (API.md), and as additions mirroring the gRPC stream ``send`` and ``read``;
any of them may carry a ``ref`` (a non-negative integer or a string of up to 64 characters) echoed in the answer.
Server -> client: the events of API.md, ``ready``, ``pong``, ``error`` and, for the additions, ``sent``
(``{ref, message, duplicate}``) and ``marked`` (``{ref, conversation_id, read_seq}``). Ids are decimal strings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, assert_never

import orjson
from pydantic import Field, ValidationError

from tidings.bff.biz.realtime.events import (
    ConversationRead,
    Envelope,
    Event,
    Failure,
    Inbound,
    Marked,
    MarkRead,
    MessageNew,
    MessageRecalled,
    MessageRemoved,
    Outbound,
    Ping,
    Pong,
    PresenceChanged,
    Ready,
    Ref,
    SendText,
    Sent,
    SessionEnded,
    StartTyping,
    Typing,
)
from tidings.bff.service.connection import BadFrame, Codec
from tidings.bff.service.schema import Body, MessageOut
from tidings.pkg import errors
from tidings.pkg.edge import MAX_ID, Id
from tidings.pkg.errors import FieldViolation, TidingsError
from tidings.pkg.errors.http import to_http_body
from tidings.service.chat.message import Message

TRANSPORT = "ws"
MAX_REF = (1 << 64) - 1


class _Frame(Body):
    ref: Annotated[int, Field(ge=0, le=MAX_REF, strict=True)] | Annotated[str, Field(max_length=64)] | None = None


class _Ping(_Frame):
    type: Literal["ping"]


class _Typing(_Frame):
    type: Literal["typing"]
    conversation_id: Id


class _Send(_Frame):
    type: Literal["send"]
    conversation_id: Id
    client_msg_id: str = Field(max_length=256)
    text: str


class _Read(_Frame):
    type: Literal["read"]
    conversation_id: Id
    seq: int = Field(ge=0, le=MAX_ID, strict=True)


_KINDS: dict[str, type[_Frame]] = {"ping": _Ping, "typing": _Typing, "send": _Send, "read": _Read}


def decode(raw: str | bytes, max_bytes: int) -> Inbound:
    """The client frame in ``raw``; ``BadFrame`` (400, ``metadata.field`` naming what is wrong) otherwise."""
    size = len(raw.encode()) if isinstance(raw, str) and len(raw) * 4 > max_bytes else len(raw)
    if size > max_bytes:
        raise BadFrame(_invalid("frame", f"must be at most {max_bytes} bytes"))
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadFrame(_invalid("frame", "must be one JSON object (integers within 64 bits)")) from None
    if not isinstance(data, dict):
        raise BadFrame(_invalid("frame", "must be a JSON object"))
    ref = _ref(data.get("ref"))
    kind = _KINDS.get(data["type"]) if isinstance(data.get("type"), str) else None
    if kind is None:
        raise BadFrame(_invalid("type", f"must be one of {', '.join(_KINDS)}"), ref)
    try:
        frame = kind.model_validate(data)
    except ValidationError as exc:
        violations = [FieldViolation(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise BadFrame(errors.invalid_fields(violations), ref) from None
    return _inbound(frame)


def _ref(value: object) -> Ref:
    """The frame's ref if it is a valid one (to echo even when the rest of the frame is bad)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= MAX_REF:
        return value
    if isinstance(value, str) and len(value) <= 64:
        return value
    return None


def _inbound(frame: _Frame) -> Inbound:
    match frame:
        case _Ping():
            return Ping(frame.ref)
        case _Typing():
            return StartTyping(frame.conversation_id, frame.ref)
        case _Send():
            return SendText(frame.conversation_id, frame.client_msg_id, frame.text, frame.ref)
        case _Read():
            return MarkRead(frame.conversation_id, frame.seq, frame.ref)
    raise AssertionError(f"no mapping for {type(frame).__name__}")


def _invalid(field: str, description: str) -> TidingsError:
    return errors.invalid_fields([FieldViolation(field, description)])


def encode(frame: Outbound) -> str:
    """The JSON text of a server frame; an event is encoded once however many connections it goes to."""
    match frame:
        case Envelope():
            return frame.encoded(TRANSPORT, _event_text)
        case Ready(session_id):
            return _text({"type": "ready", "session_id": session_id})
        case Pong(ref):
            return _text(_with_ref({"type": "pong"}, ref))
        case Sent(ref, message, duplicate):
            return _text(_with_ref({"type": "sent", "message": message_to_json(message), "duplicate": duplicate}, ref))
        case Marked(ref, conversation_id, read_seq):
            marked = {"type": "marked", "conversation_id": str(conversation_id), "read_seq": read_seq}
            return _text(_with_ref(marked, ref))
        case Failure(ref, error, trace_id):
            return _text(_with_ref({"type": "error", **to_http_body(error, trace_id)}, ref))
        case _:
            assert_never(frame)


def event_to_json(event: Event) -> dict[str, Any]:  # noqa: PLR0911 (one return per kind of event)
    """An event as API.md's WebSocket section shows it."""
    match event:
        case MessageNew(message):
            return {"type": "message.new", "message": message_to_json(message)}
        case MessageRecalled(conversation_id, message_id, seq):
            return {
                "type": "message.recalled",
                "conversation_id": str(conversation_id),
                "message_id": str(message_id),
                "seq": seq,
            }
        case MessageRemoved(conversation_id, message_id, seq, reason):
            return {
                "type": "message.removed",
                "conversation_id": str(conversation_id),
                "message_id": str(message_id),
                "seq": seq,
                "reason": reason,
            }
        case ConversationRead(conversation_id, user_id, seq):
            return {
                "type": "conversation.read",
                "conversation_id": str(conversation_id),
                "user_id": str(user_id),
                "seq": seq,
            }
        case Typing(conversation_id, user_id):
            return {"type": "typing", "conversation_id": str(conversation_id), "user_id": str(user_id)}
        case PresenceChanged(user_id, status):
            return {"type": "presence", "user_id": str(user_id), "status": status.value}
        case SessionEnded(reason, message):
            return {"type": "session.ended", "reason": reason, "message": message}
        case _:
            assert_never(event)


def _event_text(event: Event) -> str:
    return _text(event_to_json(event))


def message_to_json(message: Message) -> dict[str, Any]:
    return MessageOut.of(message).model_dump()


def _with_ref(frame: dict[str, Any], ref: Ref) -> dict[str, Any]:
    if ref is not None:
        frame["ref"] = ref
    return frame


def _text(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


CODEC: Codec[str | bytes, str] = Codec(TRANSPORT, decode, encode)
