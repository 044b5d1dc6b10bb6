"""Unix milliseconds (how Tidings stores time) to and from ``google.protobuf.Timestamp`` (how contracts carry it)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def millis(stamp: Timestamp) -> int:
    return stamp.ToMilliseconds()
