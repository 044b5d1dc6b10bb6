"""What every JSON edge (the bff's public API, the back office's) shares: ids as decimal strings, RFC 3339 UTC
times, and text that is well-formed Unicode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic.config import JsonDict

MAX_ID = (1 << 63) - 1
# Integers a schema-driven client may send where the server takes up to 2**63 - 1: JSON numbers past 2**53 are not
# exact in most clients (ids travel as strings for that reason), and a fuzzer's near-2**63 numbers round up past it.
SAFE_INTEGER = 2**53 - 1


def integral(value: object) -> object:
    # JSON Schema's integers include 3.0: take a float with nothing after the point as the integer it is.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _parse_id(value: object) -> object:
    # A decimal string is the documented form; a number is tolerated. Anything else fails the int check below.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return integral(value)


# Declared as clients send it: a decimal string (up to 18 digits in the schema, so every example fits 63 bits),
# or a JSON integer, above 0.
ID_SCHEMA: JsonDict = {
    "anyOf": [
        {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
        {"type": "integer", "minimum": 1, "maximum": SAFE_INTEGER},
    ]
}
Id = Annotated[int, BeforeValidator(_parse_id), Field(gt=0, le=MAX_ID, strict=True), WithJsonSchema(ID_SCHEMA)]


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def well_formed(value: object) -> object:
    """``value`` if every string in it is well-formed Unicode; ``ValueError`` otherwise.

    JSON may escape a lone UTF-16 surrogate (``"\\ud800"``), which Python decodes into a string no UTF-8 encoder
    (protobuf, the database) accepts: refused here, at the edge, so it is a 400 naming the field, never a 500.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    elif isinstance(value, list | tuple):
        for item in value:
            well_formed(item)
    return value
