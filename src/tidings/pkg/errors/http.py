"""``TidingsError`` as the HTTP body of API.md: ``{"error": {code, reason, message, metadata, trace_id}}``.

The models double as the error schema of the bff's OpenAPI document.
"""

from __future__ import annotations

import math
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


_FAILURE = {"model": ErrorBody, "description": "The error body of API.md; the status is `error.code`."}
# What an API's routes declare besides their success, for its OpenAPI document: any 4xx or 5xx, with this body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {"4XX": _FAILURE, "5XX": _FAILURE}


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


def retry_after(error: TidingsError) -> dict[str, str]:
    """The headers that say when to try again (``Retry-After`` in whole seconds, ``X-RateLimit-*``), for an error
    that knows it (``metadata.retry_after_s``: RATE_LIMITED and the like); none otherwise."""
    wait = error.metadata.get("retry_after_s")
    if wait is None:
        return {}
    try:
        seconds = max(1, math.ceil(float(wait)))
    except ValueError:
        return {}
    headers = {"Retry-After": str(seconds)}
    if error.code == 429:
        headers["X-RateLimit-Remaining"] = "0"
        if "limit" in error.metadata:
            headers["X-RateLimit-Limit"] = error.metadata["limit"]
    return headers
