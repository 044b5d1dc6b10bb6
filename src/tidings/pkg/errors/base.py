"""The one error type of Tidings (the Kratos model), free of any framework so that ``biz`` code can raise it.

An error has an HTTP-like ``code``, a ``reason`` (an UPPER_SNAKE value of a service's ``ErrorReason`` enum, the
string clients match on), a ``message`` for humans and string ``metadata``. The generated modules beside this one
(``tidings.api.chat.v1.errors`` ...) build them; ``tidings.pkg.errors.grpc`` and ``.http`` carry them over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its dotted path (``member_ids.3``) and what is wrong with it."""

    field: str
    description: str


class TidingsError(Exception):
    """A failure a caller may see: raised by use cases, carried unchanged across HTTP and gRPC."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str = "",
        metadata: Mapping[str, str] | None = None,
        cause: BaseException | None = None,
        *,
        domain: str = "",
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})
        # The proto package whose ErrorReason enum defines ``reason`` (google.rpc.ErrorInfo.domain).
        self.domain = domain
        # For invalid input: every bad field (google.rpc.BadRequest on gRPC).
        self.violations = tuple(violations)
        if cause is not None:
            self.__cause__ = cause

    def copy(self) -> TidingsError:
        """The same error as a new object: for each of several waiters to raise in its own task, with its own
        traceback (one exception object raised in many tasks gathers all their tracebacks)."""
        return TidingsError(
            self.code, self.reason, self.message, self.metadata, domain=self.domain, violations=self.violations
        )

    @property
    def cause(self) -> BaseException | None:
        """What this error was raised from (``raise ... from cause``), kept for logs and never sent."""
        return self.__cause__

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"TidingsError(code={self.code}, reason={self.reason!r}, message={self.message!r}, "
            f"metadata={self.metadata!r}, domain={self.domain!r})"
        )


@dataclass(frozen=True)
class Reason:
    """One value of a service's ``ErrorReason`` enum with its code; the generated helpers are made of these."""

    domain: str
    name: str
    code: int

    def error(self, message: str, /, **metadata: str) -> TidingsError:
        return TidingsError(self.code, self.name, message, metadata, domain=self.domain)

    def matches(self, error: BaseException | None) -> bool:
        """Whether ``error`` has this reason (reasons are unique across services, so the name decides)."""
        return isinstance(error, TidingsError) and error.reason == self.name
