"""Every action an operator takes goes through ``Audited``: one audit entry before it, one result after.

The entry is written before anything of the action is done (its target looked up included), so an action the log
could not record is never taken (AUDIT_UNAVAILABLE). The result is written once the owning service answered, with
the target as it was and became, or as failed with the error when a call failed or was cut short; it is shielded
from the request's cancellation. If it cannot be written (or the back office stops midway) the entry reads as
outcome "unknown", never as a second entry. The log is append-only: nothing here changes or removes a row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tidings.admin.biz.model import AuditEntry, AuditQuery, AuditRecord, AuditResult, Caller, Outcome, Role
from tidings.admin.biz.operators import require
from tidings.admin.biz.ports import AuditLog
from tidings.api.admin.v1 import errors as admin_errors
from tidings.pkg import errors
from tidings.pkg.clock import Clock
from tidings.pkg.logger import Logger

T = TypeVar("T")
MAX_REASON = 500
MAX_PAGE = 200


@dataclass(frozen=True)
class Done(Generic[T]):
    """What an action answers, and its target before and after (where it applies)."""

    value: T
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    kind: str  # user, message, conversation, operator
    id: str


class Audited:
    def __init__(
        self,
        log: AuditLog,
        next_id: Callable[[], int],
        clock: Clock,
        trace_id: Callable[[], str],
        logger: Logger,
    ) -> None:
        self._log = log
        self._next_id = next_id
        self._clock = clock
        self._trace_id = trace_id
        self._logger = logger

    async def run(
        self,
        caller: Caller,
        action: str,
        target: Target,
        reason: str,
        act: Callable[[], Awaitable[Done[T]]],
    ) -> T:
        """Record the action, take it (``act`` looks its target up and calls the owning service), record the result."""
        entry = AuditEntry(
            id=self._next_id(),
            at_ms=self._clock.now_ms(),
            operator_id=caller.operator.id,
            operator=caller.operator.username,
            action=action,
            target_kind=target.kind,
            target=target.id,
            reason=reason,
            trace_id=self._trace_id(),
        )
        try:
            await self._log.begin(entry)
        except Exception as exc:
            self._logger.error("audit entry not written; action refused", action=action, error=repr(exc))
            raise admin_errors.audit_unavailable("the audit log cannot record this action now; try again") from exc
        try:
            done = await act()
        except BaseException as exc:  # a refusal, a failure, or the request cut short: all recorded as failed
            await self._finish(AuditResult(entry.id, self._clock.now_ms(), Outcome.FAILED, _describe(exc)))
            raise
        await self._finish(AuditResult(entry.id, self._clock.now_ms(), Outcome.OK, "", done.before, done.after))
        return done.value

    async def _finish(self, result: AuditResult) -> None:
        try:
            await asyncio.shield(self._log.finish(result))
        except Exception as exc:
            self._logger.error("audit result not written", entry=result.entry_id, error=repr(exc))

    async def page(self, caller: Caller, query: AuditQuery) -> list[AuditRecord]:
        require(caller, Role.VIEWER)
        if not 1 <= query.limit <= MAX_PAGE:
            errors.raise_for_fields({"limit": f"1-{MAX_PAGE}"})
        return await self._log.page(query)


def checked_reason(reason: str) -> str:
    """The reason an action must give: INVALID_ARGUMENT naming ``reason`` when it is blank or too long."""
    if not reason.strip():
        errors.raise_for_fields({"reason": "give a reason: it goes into the audit log"})
    if len(reason) > MAX_REASON:
        errors.raise_for_fields({"reason": f"at most {MAX_REASON} characters"})
    return reason.strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.TidingsError):
        return f"{exc.reason}: {exc.message}"[:512]
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled before the service answered"
    return repr(exc)[:512]
