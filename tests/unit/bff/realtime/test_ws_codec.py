"""WebSocket JSON: bad client frames become 400 errors naming the field; server frames have API.md's shapes."""

from __future__ import annotations

import json

import pytest

from tests.unit.bff.fakes import NOW
from tidings.api.common.v1 import errors as common_errors
from tidings.bff.biz.model import Presence
from tidings.bff.biz.realtime.events import (
    ConversationRead,
    Envelope,
    Failure,
    MarkRead,
    MessageNew,
    MessageRecalled,
    MessageRemoved,
    Ping,
    PresenceChanged,
    Ready,
    SendText,
    Sent,
    SessionEnded,
    StartTyping,
    Typing,
)
from tidings.bff.service import ws_codec
from tidings.service.chat.message import Message

BIG = 2**62 + 1
MESSAGE = Message(BIG, BIG - 1, 3, BIG - 2, "c-1", "hello", NOW, False)


@pytest.mark.parametrize(
    ("raw", "field", "ref"),
    [
        ("not json", "frame", None),
        ("[1, 2]", "frame", None),
        ('"ping"', "frame", None),
        ('{"ref": 1}', "type", 1),
        ('{"type": "shout", "ref": "a"}', "type", "a"),
        ('{"type": 7}', "type", None),
        ('{"type": "typing", "ref": 2}', "conversation_id", 2),
        ('{"type": "typing", "conversation_id": "abc"}', "conversation_id", None),
        ('{"type": "typing", "conversation_id": -4}', "conversation_id", None),
        ('{"type": "send", "conversation_id": "5", "text": "hi"}', "client_msg_id", None),
        ('{"type": "read", "conversation_id": "5", "seq": "3"}', "seq", None),
        ('{"type": "ping", "ref": -1}', "ref", None),
        ('{"type": "ping", "ref": true}', "ref", None),
    ],
)
def test_a_bad_frame_is_a_400_naming_the_field(raw: str, field: str, ref: object) -> None:
    with pytest.raises(ws_codec.BadFrame) as bad:
        ws_codec.decode(raw, max_bytes=1024)
    assert bad.value.error.code == 400
    assert bad.value.error.reason == "INVALID_ARGUMENT"
    assert bad.value.error.metadata["field"].split(".")[0] == field
    assert bad.value.ref == ref


def test_a_frame_over_the_size_bound_is_refused_before_it_is_parsed() -> None:
    frame = json.dumps(
        {"type": "send", "conversation_id": "5", "client_msg_id": "c", "text": "é" * 600}, ensure_ascii=False
    )
    assert ws_codec.decode(frame, max_bytes=2048) == SendText(5, "c", "é" * 600)
    with pytest.raises(ws_codec.BadFrame) as bad:
        ws_codec.decode(frame, max_bytes=1024)  # 600 characters, but 1,200 bytes of text
    assert bad.value.error.metadata["field"] == "frame"


def test_good_frames_decode_with_ids_as_strings_or_numbers() -> None:
    assert ws_codec.decode('{"type": "ping"}', max_bytes=1024) == Ping()
    assert ws_codec.decode(b'{"type": "typing", "conversation_id": "12", "ref": 3}', max_bytes=1024) == StartTyping(
        12, 3
    )
    assert ws_codec.decode('{"type": "read", "conversation_id": 12, "seq": 4}', max_bytes=1024) == MarkRead(12, 4)


def test_events_have_the_shapes_of_api_md_with_ids_as_strings() -> None:
    def shape(event: object) -> dict[str, object]:
        return json.loads(ws_codec.encode(Envelope(event)))  # type: ignore[arg-type]

    assert shape(MessageNew(MESSAGE)) == {
        "type": "message.new",
        "message": {
            "id": str(BIG),
            "conversation_id": str(BIG - 1),
            "seq": 3,
            "sender_id": str(BIG - 2),
            "client_msg_id": "c-1",
            "text": "hello",
            "created_at": "2027-01-15T08:00:00.000Z",
            "recalled": False,
        },
    }
    assert shape(MessageRecalled(1, BIG, 4)) == {
        "type": "message.recalled",
        "conversation_id": "1",
        "message_id": str(BIG),
        "seq": 4,
    }
    assert shape(MessageRemoved(1, BIG, 4, "spam <script>")) == {
        "type": "message.removed",
        "conversation_id": "1",
        "message_id": str(BIG),
        "seq": 4,
        "reason": "spam <script>",
    }
    assert shape(ConversationRead(1, 2, 9)) == {
        "type": "conversation.read",
        "conversation_id": "1",
        "user_id": "2",
        "seq": 9,
    }
    assert shape(Typing(1, 2)) == {"type": "typing", "conversation_id": "1", "user_id": "2"}
    assert shape(PresenceChanged(2, Presence.OFFLINE)) == {"type": "presence", "user_id": "2", "status": "offline"}
    assert shape(SessionEnded("USER_BANNED", "Your account was suspended by an operator.")) == {
        "type": "session.ended",
        "reason": "USER_BANNED",
        "message": "Your account was suspended by an operator.",
    }


def test_answers_echo_the_ref_and_errors_carry_the_error_object() -> None:
    assert json.loads(ws_codec.encode(Ready("s-1"))) == {"type": "ready", "session_id": "s-1"}
    sent = json.loads(ws_codec.encode(Sent("r1", MESSAGE, True)))
    assert (sent["type"], sent["ref"], sent["duplicate"], sent["message"]["id"]) == ("sent", "r1", True, str(BIG))
    failure = Failure(7, common_errors.invalid_argument("bad", field="type"), "ab" * 16)
    assert json.loads(ws_codec.encode(failure)) == {
        "type": "error",
        "ref": 7,
        "error": {
            "code": 400,
            "reason": "INVALID_ARGUMENT",
            "message": "bad",
            "metadata": {"field": "type"},
            "trace_id": "ab" * 16,
        },
    }


def test_an_event_is_encoded_once_for_all_its_connections() -> None:
    envelope = Envelope(Typing(1, 2))
    assert ws_codec.encode(envelope) is ws_codec.encode(envelope)
