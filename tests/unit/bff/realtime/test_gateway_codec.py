"""gRPC stream frames arrive as bytes: what is not a ConnectRequest, is too big or breaks the contract's rules is
a 400 naming the field (with the frame's ref when it could be read), answered on a stream that stays open."""

from __future__ import annotations

import pytest

from tidings.api.gateway.v1 import gateway_pb2 as pb
from tidings.bff.biz.realtime.events import Envelope, MessageRemoved, Ping, SendText
from tidings.bff.codec import event_from_pb
from tidings.bff.service import gateway_codec as codec
from tidings.bff.service.connection import BadFrame

MAX_BYTES = 1024


def frame(**fields: object) -> bytes:
    return pb.ConnectRequest(**fields).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "field", "ref"),
    [
        (b"\xff\xff\xff\xff not protobuf", "frame", None),
        (b"\x0a", "frame", None),  # a length-delimited field cut short
        (frame(ref=3), "frame", 3),  # no frame kind set, or one this server does not know
        (frame(ref=4, send=pb.SendFrame(conversation_id=5, client_msg_id="c", text="x" * MAX_BYTES)), "frame", 4),
        (frame(ref=5, typing=pb.TypingFrame(conversation_id=0)), "typing.conversation_id", 5),
        (frame(ref=6, read=pb.ReadFrame(conversation_id=5, seq=-1)), "read.seq", 6),
    ],
)
def test_a_bad_frame_is_a_400_naming_the_field(raw: bytes, field: str, ref: int | None) -> None:
    with pytest.raises(BadFrame) as bad:
        codec.decode(raw, max_bytes=MAX_BYTES)
    assert bad.value.error.code == 400
    assert bad.value.error.metadata["field"] == field
    assert bad.value.ref == ref


def test_good_frames_decode_to_what_they_carry() -> None:
    send = codec.decode(
        frame(ref=9, send=pb.SendFrame(conversation_id=5, client_msg_id="c", text="hi")), max_bytes=MAX_BYTES
    )
    assert codec.inbound(send) == SendText(5, "c", "hi", 9)
    assert codec.inbound(codec.decode(frame(ref=1, ping=pb.PingFrame()), max_bytes=MAX_BYTES)) == Ping(1)


def test_a_removal_travels_to_the_stream_as_the_proto_event_and_back() -> None:
    removed = MessageRemoved(7, 2**62 + 1, 4, "harassment")
    answer = codec.encode(Envelope(removed))
    assert answer is not None
    assert answer.event.message_removed == pb.MessageRemoved(
        conversation_id=7, message_id=2**62 + 1, seq=4, reason="harassment"
    )
    assert event_from_pb(answer.event) == removed  # as Deliver hands it from the push job
