"""``SQLAuditLog``: the audit log in two append-only tables (entries, and one result per entry), read together."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, or_, select

from tidings.admin.biz.model import AuditEntry, AuditQuery, AuditRecord, AuditResult, Outcome
from tidings.admin.tables import audit_entries, audit_outcomes
from tidings.pkg.repo import SQLRepo


class SQLAuditLog(SQLRepo):
    async def begin(self, entry: AuditEntry) -> None:
        async with self._statement() as conn:
            await conn.execute(
                insert(audit_entries).values(
                    id=entry.id,
                    at_ms=entry.at_ms,
                    operator_id=entry.operator_id,
                    operator=entry.operator,
                    action=entry.action,
                    target_kind=entry.target_kind,
                    target=entry.target,
                    reason=entry.reason,
                    trace_id=entry.trace_id,
                )
            )

    async def finish(self, result: AuditResult) -> None:
        async with self._statement() as conn:
            await conn.execute(
                insert(audit_outcomes).values(
                    entry_id=result.entry_id,
                    at_ms=result.at_ms,
                    outcome=result.outcome.value,
                    error=result.error[:512],
                    before=_dump(result.before),
                    after=_dump(result.after),
                )
            )

    async def page(self, query: AuditQuery) -> list[AuditRecord]:
        entries, outcomes = audit_entries, audit_outcomes
        conditions = []
        if query.operator:
            conditions.append(entries.c.operator == query.operator.strip().lower())
        if query.action:
            conditions.append(entries.c.action == query.action)
        if query.target:
            conditions.append(entries.c.target == query.target)
        if query.text:
            pattern = "%" + query.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                or_(entries.c.reason.like(pattern, escape="\\"), entries.c.target.like(pattern, escape="\\"))
            )
        if query.before_id is not None:
            conditions.append(entries.c.id < query.before_id)
        statement = (
            select(
                entries,
                outcomes.c.at_ms.label("done_at_ms"),
                outcomes.c.outcome,
                outcomes.c.error,
                outcomes.c.before,
                outcomes.c.after,
            )
            .select_from(entries.outerjoin(outcomes, outcomes.c.entry_id == entries.c.id))
            .where(*conditions)
            .order_by(entries.c.id.desc())
            .limit(query.limit)
        )
        async with self._read() as conn:
            rows = await conn.execute(statement)
        return [_record(row) for row in rows]


def _record(row: Any) -> AuditRecord:
    entry = AuditEntry(
        id=row.id,
        at_ms=row.at_ms,
        operator_id=row.operator_id,
        operator=row.operator,
        action=row.action,
        target_kind=row.target_kind,
        target=row.target,
        reason=row.reason,
        trace_id=row.trace_id,
    )
    result = (
        AuditResult(row.id, row.done_at_ms, Outcome(row.outcome), row.error, _load(row.before), _load(row.after))
        if row.outcome is not None
        else None
    )
    return AuditRecord(entry, result)


def _dump(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value is not None else None


def _load(value: str | None) -> dict[str, Any] | None:
    loaded = json.loads(value) if value else None
    return loaded if isinstance(loaded, dict) else None
