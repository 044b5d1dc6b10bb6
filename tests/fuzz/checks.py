"""What the fuzzer checks on every answer: schemathesis' own checks (no server error, the status code, content
type, headers and body the document declares, bad input refused), and ours: the security headers of
``tidings.pkg.middleware.browser``."""

from __future__ import annotations

import schemathesis

from tidings.pkg.middleware.browser import SECURITY_HEADERS


@schemathesis.check
def security_headers(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every answer carries ``SECURITY_HEADERS`` (nosniff, no referrer, a policy that forbids framing)."""
    for name, value in SECURITY_HEADERS.items():
        sent = response.headers.get(name.lower(), [])
        if sent != [value]:
            raise AssertionError(f"{name}: expected {value!r}, got {sent!r}")


NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "security_headers",
)
