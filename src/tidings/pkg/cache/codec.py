"""Versioned bytes: every stored value starts with a header naming its schema, so old or foreign bytes read as a miss.

Layout: ``b"tc"`` (magic), the schema version (2 bytes, big endian), a kind byte (0: the null sentinel, "no such
row"; 1: a value), then the payload. Bumping a codec's version makes every value written by older code a miss
that the next load overwrites; nothing ever decodes bytes of another schema as its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

import orjson

V = TypeVar("V")
T = TypeVar("T")

_MAGIC = b"tc"
_HEADER = struct.Struct(">2sHB")
_NULL = 0
_VALUE = 1


class Corrupt(ValueError):
    """The bytes are not a value of this codec's schema (foreign, older, truncated or damaged)."""


class Codec(Protocol[V]):
    version: int

    def dump(self, value: V) -> bytes: ...

    def load(self, payload: bytes) -> V:
        """The value of ``payload``, or any exception if it is not one (the caller treats that as a miss)."""


class JsonCodec(Generic[T]):
    """JSON payloads (orjson) through two plain functions: to something JSON-able, and back."""

    def __init__(self, version: int, to_json: Callable[[T], Any], from_json: Callable[[Any], T]) -> None:
        if not 0 <= version <= 0xFFFF:
            raise ValueError("a codec version fits in two bytes")
        self.version = version
        self._to_json = to_json
        self._from_json = from_json

    def dump(self, value: T) -> bytes:
        return orjson.dumps(self._to_json(value))

    def load(self, payload: bytes) -> T:
        return self._from_json(orjson.loads(payload))


def dataclass_codec(cls: Callable[..., T], version: int) -> JsonCodec[T]:
    """A codec for a dataclass whose fields are JSON types (ints, strings, bools, lists)."""
    return JsonCodec(version, asdict, lambda data: cls(**data))  # type: ignore[arg-type]


def encode(codec: Codec[V], value: V | None) -> bytes:
    if value is None:
        return _HEADER.pack(_MAGIC, codec.version, _NULL)
    return _HEADER.pack(_MAGIC, codec.version, _VALUE) + codec.dump(value)


def decode(codec: Codec[V], raw: bytes) -> V | None:
    """The value (``None`` for the null sentinel), or ``Corrupt``."""
    if len(raw) < _HEADER.size:
        raise Corrupt("shorter than the header")
    magic, version, kind = _HEADER.unpack_from(raw)
    if magic != _MAGIC or version != codec.version:
        raise Corrupt(f"not schema v{codec.version}")
    if kind == _NULL and len(raw) == _HEADER.size:
        return None
    if kind != _VALUE:
        raise Corrupt(f"unknown kind {kind}")
    try:
        return codec.load(raw[_HEADER.size :])
    except Exception as exc:
        raise Corrupt(f"payload does not decode: {exc!r}") from exc
