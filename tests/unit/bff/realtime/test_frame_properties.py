"""Any client frame either decodes to a frame the connection serves or is a 400 naming the field, and the error
frame that answers it can be written: on both transports, for generated frames (``tests/frames.py``). The live
counterpart, against a running bff, is tests/e2e/test_frame_fuzz.py."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from tests.frames import connect_bytes, ws_frames
from tidings.bff.biz.realtime.events import Failure, MarkRead, Ping, SendText, StartTyping
from tidings.bff.service import gateway_codec, ws_codec
from tidings.bff.service.connection import BadFrame, Codec

MAX_BYTES = 64 * 1024
TRACE_ID = "0" * 32
PROPERTY = settings(max_examples=1000, deadline=None, database=None)


def decoded_or_refused(codec: Codec[Any, Any], raw: str | bytes) -> None:
    try:
        frame = codec.decode(raw, MAX_BYTES)
    except BadFrame as bad:
        refused = bad
    else:
        assert isinstance(frame, Ping | StartTyping | SendText | MarkRead)
        return
    assert refused.error.code == 400
    assert refused.error.reason
    assert refused.error.metadata["field"]
    # The error frame that answers it can be written (an unwritable one would end the connection).
    assert codec.encode(Failure(refused.ref, refused.error, TRACE_ID)) is not None


@PROPERTY
@given(raw=ws_frames("123456789"))
def test_any_websocket_frame_decodes_or_is_a_400_naming_the_field(raw: str | bytes) -> None:
    decoded_or_refused(ws_codec.CODEC, raw)


@PROPERTY
@given(raw=connect_bytes(123456789))
def test_any_connect_request_bytes_decode_or_are_a_400_naming_the_field(raw: bytes) -> None:
    decoded_or_refused(gateway_codec.CODEC, raw)
