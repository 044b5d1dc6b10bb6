"""``TidingsError`` as the HTTP body of API.md: ``{"error": {code, reason, message, metadata, trace_id}}``.

The models double as the error schema of the bff's OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tidings.pkg.errors.base import TidingsError


class ErrorObject(BaseModel):
    code: int
    reason: str
    message: str
    metadata: dict[str, str]
    # The request's trace id, also in the server's log lines for that request.
    trace_id: str


class ErrorBody(BaseModel):
    error: ErrorObject


def to_http_body(error: TidingsError, trace_id: str) -> dict[str, Any]:
    """The JSON body for ``error``; the HTTP status is ``error.code``."""
    body = ErrorBody(
        error=ErrorObject(
            code=error.code,
            reason=error.reason,
            message=error.message,
            metadata=error.metadata,
            trace_id=trace_id,
        )
    )
    return body.model_dump()
