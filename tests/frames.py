"""Hypothesis strategies of client frames for both live transports, shared by the codecs' property tests and the
frame fuzzing of a running bff.

WebSocket (JSON): valid frames; valid frames mutated (a field dropped, an extra one, a value of the wrong type, huge
or negative numbers, ids that are no numbers, Unicode edge cases, over-long text); and text or bytes that are no
frame at all. gRPC (``ConnectRequest``): valid requests, requests with out-of-range fields, serialized requests with
their bytes mutated, and random bytes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tidings.api.gateway.v1 import gateway_pb2 as pb

INT64 = (-(2**63), 2**63 - 1)
UINT64_MAX = 2**64 - 1
# Strings that have broken text handling somewhere: control and format characters, combining marks, characters
# outside the BMP, a byte-order mark, lone UTF-16 surrogates (JSON may escape them; they are no valid Unicode).
EDGE_TEXT = st.sampled_from(
    [
        *("", " ", "\t\n", "\x00", "\x7f", "\ufeff", "\u202e\u202d", "e\u0301\u0301\u0301", "\U0001f642"),
        *("\U0001f469\u200d\U0001f469\u200d\U0001f467", "\U0010ffff", "\U0001d54f" * 1000, "\x00" * 64),
        *("\ud800", "\udfff", "a\udc80b"),
    ]
)
HUGE_NUMBERS = st.sampled_from(
    [
        *(-1, 0, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, UINT64_MAX, 2**64, 10**30, -(10**30)),
        *(1e308, -0.0, 3.0, 0.5, 1e-300),
    ]
)
NOT_IDS = st.sampled_from(
    [
        *("", "abc", "1e5", "0x10", " 12", "12 ", "+5", "-1", "0", "\u0663", "\uff11\uff12", "12.0", "null"),
        *("9" * 19, "9" * 40, "9223372036854775807", "9223372036854775808"),
    ]
)
# What a JSON value can be: a wrong-typed value for any field.
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    EDGE_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# A client_msg_id as chat takes it: printable ASCII without spaces, 1-64 characters.
CLIENT_MSG_IDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64)
# Message text as chat takes it (1-4,000 code points), kept short: what matters here is its characters.
TEXTS = st.text(min_size=1, max_size=200)
REFS = st.one_of(st.integers(0, UINT64_MAX), st.text(max_size=64))


def ws_frames(conversation_id: str) -> st.SearchStrategy[str | bytes]:
    """Any WebSocket client frame as it goes on the wire: valid, mutated, or no frame at all."""
    return st.one_of(
        st.builds(ws_wire, ws_valid(conversation_id), st.booleans()),
        st.builds(ws_wire, ws_mutated(conversation_id), st.booleans()),
        ws_garbage(),
    )


def ws_garbage() -> st.SearchStrategy[str | bytes]:
    """Text and bytes that are (almost always) no JSON object."""
    return st.one_of(st.binary(max_size=2048), st.text(max_size=2048), st.sampled_from(["", "{", "[]", "null", "1"]))


def _ids(conversation_id: str) -> st.SearchStrategy[object]:
    """Mostly the caller's own conversation (as a string or a number), sometimes someone else's or none at all."""
    return st.one_of(
        st.just(conversation_id), st.just(int(conversation_id)), st.integers(1, 2**63 - 1).map(str), NOT_IDS
    )


def ws_valid(conversation_id: str) -> st.SearchStrategy[dict[str, Any]]:
    ids = _ids(conversation_id)
    optional = {"ref": REFS}
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("ping")}, optional=optional),
        st.fixed_dictionaries({"type": st.just("typing"), "conversation_id": ids}, optional=optional),
        st.fixed_dictionaries(
            {"type": st.just("send"), "conversation_id": ids, "client_msg_id": CLIENT_MSG_IDS, "text": TEXTS},
            optional=optional,
        ),
        st.fixed_dictionaries(
            {"type": st.just("read"), "conversation_id": ids, "seq": st.integers(0, 10**6)}, optional=optional
        ),
    )


@st.composite
def ws_mutated(draw: st.DrawFn, conversation_id: str) -> dict[str, Any]:
    """A valid frame with one thing wrong with it (or, now and then, nothing that matters)."""
    frame = dict(draw(ws_valid(conversation_id)))
    keys = sorted(frame)
    match draw(st.sampled_from(["drop", "extra", "retype", "number", "id", "unicode", "long"])):
        case "drop":
            del frame[draw(st.sampled_from(keys))]
        case "extra":
            frame[draw(st.text(max_size=12))] = draw(JSON_VALUES)
        case "retype":
            frame[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        case "number":
            frame[draw(st.sampled_from(["conversation_id", "seq", "ref"]))] = draw(HUGE_NUMBERS)
        case "id":
            frame["conversation_id"] = draw(NOT_IDS)
        case "unicode":
            frame[draw(st.sampled_from(["text", "client_msg_id", "type", "conversation_id", "ref"]))] = draw(EDGE_TEXT)
        case _:
            # Over the 4,000 code points a message may have, and under the frame size bound even when escaped.
            frame["text"] = draw(st.sampled_from(["x", "é", "🙂"])) * draw(st.integers(4_001, 4_500))
    return frame


def ws_wire(frame: dict[str, Any], ascii_only: bool) -> str | bytes:
    """``frame`` as JSON text; as bytes (a binary frame, not valid UTF-8) when it holds a lone surrogate unescaped,
    which no text frame can carry."""
    text = json.dumps(frame, ensure_ascii=ascii_only)
    return text if _encodes(text) else text.encode("utf-8", "surrogatepass")


def _encodes(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# gRPC ------------------------------------------------------------------------------------------------------------

# Proto strings are valid Unicode: the edge cases without the lone surrogates.
_PROTO_EDGE_TEXT = EDGE_TEXT.filter(_encodes)
_PROTO_TEXTS = st.one_of(
    TEXTS, _PROTO_EDGE_TEXT, st.integers(4_001, 8_000).map(lambda n: "x" * n), st.text(max_size=300)
)
_PROTO_CLIENT_MSG_IDS = st.one_of(CLIENT_MSG_IDS, _PROTO_EDGE_TEXT, st.text(max_size=80))


def connect_requests(conversation_id: int) -> st.SearchStrategy[pb.ConnectRequest]:
    """``ConnectRequest`` messages: valid ones, ones with fields out of range, and one with no frame in it."""
    ids = st.one_of(st.just(conversation_id), st.integers(*INT64), st.sampled_from([0, -1, 2**63 - 1, -(2**63)]))
    seqs = st.one_of(st.integers(0, 10**6), st.integers(*INT64))
    refs = st.integers(0, UINT64_MAX)
    send = st.builds(pb.SendFrame, conversation_id=ids, client_msg_id=_PROTO_CLIENT_MSG_IDS, text=_PROTO_TEXTS)
    read = st.builds(pb.ReadFrame, conversation_id=ids, seq=seqs)
    typing = st.builds(pb.TypingFrame, conversation_id=ids)
    return st.one_of(
        st.builds(pb.ConnectRequest, ref=refs, send=send),
        st.builds(pb.ConnectRequest, ref=refs, read=read),
        st.builds(pb.ConnectRequest, ref=refs, typing=typing),
        st.builds(pb.ConnectRequest, ref=refs, ping=st.just(pb.PingFrame())),
        st.builds(pb.ConnectRequest, ref=refs),
    )


def connect_bytes(conversation_id: int) -> st.SearchStrategy[bytes]:
    """``ConnectRequest`` bytes as a raw client writes them: serialized requests, mutated ones, random bytes."""
    serialized = connect_requests(conversation_id).map(lambda request: request.SerializeToString())
    return st.one_of(serialized, _mutated_bytes(serialized), st.binary(max_size=2048), st.just(_INVALID_UTF8_TEXT))


# A send frame whose text field holds bytes that are no UTF-8: field 2 (send) holding field 3 (text).
_INVALID_UTF8_TEXT = b"\x12\x04\x1a\x02\xff\xfe"


@st.composite
def _mutated_bytes(draw: st.DrawFn, serialized: st.SearchStrategy[bytes]) -> bytes:
    raw = bytearray(draw(serialized))
    at = draw(st.integers(0, len(raw)))
    match draw(st.sampled_from(["flip", "truncate", "insert", "append"])):
        case "flip" if raw:
            index = min(at, len(raw) - 1)
            raw[index] ^= draw(st.integers(1, 255))
        case "truncate":
            del raw[at:]
        case "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=16))
        case _:
            raw += draw(st.binary(min_size=1, max_size=64))
    return bytes(raw)
