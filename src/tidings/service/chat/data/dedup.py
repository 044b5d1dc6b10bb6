"""``SQLDedupStore``: reservations of ``(sender_id, client_msg_id)`` in the relational store (durable, race-safe)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, and_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError

from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.chat.biz.ports import DedupKey, Reservation
from tidings.service.chat.message import Message
from tidings.service.chat.store.messages import message_from_row
from tidings.service.chat.tables import message_reservations as reservations
from tidings.service.chat.tables import messages

# Attempts of one reservation that keeps losing lock conflicts (each a few ms apart).
_LOCK_RETRIES = 5


def _reservation_from_row(row: Any, stored: bool = False) -> Reservation:
    message = Message(
        id=row.message_id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        sender_id=row.sender_id,
        client_msg_id=row.client_msg_id,
        text=row.text,
        created_at_ms=row.created_at_ms,
    )
    return Reservation(message, sent=bool(row.sent) or stored, lease_until_ms=row.lease_until_ms)


def _reservation_to_row(reservation: Reservation) -> dict[str, Any]:
    message = reservation.message
    return {
        "sender_id": message.sender_id,
        "client_msg_id": message.client_msg_id,
        "message_id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "text": message.text,
        "created_at_ms": message.created_at_ms,
        "sent": reservation.sent,
        "lease_until_ms": reservation.lease_until_ms,
    }


def _is(key: DedupKey) -> Any:
    return and_(reservations.c.sender_id == key[0], reservations.c.client_msg_id == key[1])


def _is_lock_conflict(exc: OperationalError) -> bool:
    """MySQL's deadlock (1213) or lock wait timeout (1205): the statement may simply be run again."""
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in (1205, 1213)


def _key_in(keys: Sequence[DedupKey], table: Any = reservations) -> Any:
    """``(sender_id, client_msg_id) IN (...)``: a row-value IN on the key (SQLite and MySQL alike)."""
    return tuple_(table.c.sender_id, table.c.client_msg_id).in_(list(keys))


_COLUMNS = tuple(column.name for column in reservations.c)


@functools.lru_cache(maxsize=512)
def _insert_unless_stored(rows: int, *, dual: bool) -> TextClause:
    """One INSERT of ``rows`` reservations that leaves out the keys whose message is stored, one round trip:

    ``INSERT INTO message_reservations (...) SELECT <row 1> WHERE NOT EXISTS (<its stored message>) UNION ALL ...``

    A key's reservation is pruned once its message is stored and its retry window has passed (the task module's
    ``reservations``); a retry that comes later must still get the original message, not a new one. The check
    costs a lookup on the messages' unique ``(sender_id, client_msg_id)`` index per row, in the same statement, and
    each row compares its own parameters with the column, as every other query on the key does (the column's
    ascii_bin collation decides). Written as text, once per batch size: building it from SQLAlchemy constructs for
    every batch cost more CPU than the rest of the send (``tidings bench send``). MySQL wants ``FROM DUAL`` before a
    ``WHERE`` without a table; SQLite does without.
    """
    source = " FROM DUAL" if dual else ""
    selects = [
        # Names from our own table definitions; every value is a bound parameter.
        f"SELECT {', '.join(f':{column}_{row}' for column in _COLUMNS)}{source} WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {messages.name} WHERE sender_id = :sender_id_{row} AND client_msg_id = :client_msg_id_{row})"
        for row in range(rows)
    ]
    return text(f"INSERT INTO {reservations.name} ({', '.join(_COLUMNS)}) {' UNION ALL '.join(selects)}")


def _insert_params(ordered: Sequence[Reservation]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for row, reservation in enumerate(ordered):
        for column, value in _reservation_to_row(reservation).items():
            params[f"{column}_{row}"] = value
    return params


class SQLDedupStore(SQLRepo):
    async def get_many(self, keys: Sequence[DedupKey]) -> dict[DedupKey, Reservation]:
        """The reservations of ``keys``; one whose message is stored counts as sent, marked or not (the send
        path does not mark its own sends: the persisted message says it all, one UPDATE less per batch). A key
        whose reservation was pruned answers with its stored message."""
        found: dict[DedupKey, Reservation] = {}
        stored = messages.c.id.is_not(None).label("stored")
        joined = reservations.outerjoin(messages, messages.c.id == reservations.c.message_id)
        async with self._read() as conn:
            for chunk in chunks(list(set(keys))):
                rows = await conn.execute(select(reservations, stored).select_from(joined).where(_key_in(chunk)))
                found.update(
                    (reservation.key, reservation)
                    for reservation in (_reservation_from_row(row, row.stored) for row in rows)
                )
            pruned = [key for key in set(keys) if key not in found]
            for chunk in chunks(pruned):
                rows = await conn.execute(select(messages).where(_key_in(chunk, messages)))
                for row in rows:
                    message = message_from_row(row)
                    found[(message.sender_id, message.client_msg_id)] = Reservation(message, True, 0)
        return found

    async def reserve(self, batch: Sequence[Reservation]) -> set[DedupKey]:
        if not batch:
            return set()
        # One key order for every writer: two batches inserting overlapping keys then wait, never deadlock.
        ordered = sorted(batch, key=lambda reservation: reservation.key)
        ours = await self._insert(ordered)
        if ours is not None:
            return ours
        # Some key was taken (a retry of an earlier send, or one racing its original): leave out the keys known
        # now and insert the rest together; only if that races too, one at a time, to learn which.
        known = await self.get_many([reservation.key for reservation in ordered])
        rest = [reservation for reservation in ordered if reservation.key not in known]
        if not rest:
            return set()
        ours = await self._insert(rest)
        if ours is not None:
            return ours
        ours = set()
        for reservation in rest:
            if await self._reserve_one(reservation):
                ours.add(reservation.key)
        return ours

    def _insert_unless_stored(self, rows: int) -> TextClause:
        return _insert_unless_stored(rows, dual=self._engine.dialect.name in ("mysql", "mariadb"))

    async def _insert(self, ordered: Sequence[Reservation]) -> set[DedupKey] | None:
        """Insert them all in one statement, leaving out keys whose message is stored: the keys now ours, or
        ``None`` if a key was reserved (nothing inserted then)."""
        try:
            async with self._statement() as conn:
                inserted = (
                    await conn.execute(self._insert_unless_stored(len(ordered)), _insert_params(ordered))
                ).rowcount
        except IntegrityError:
            return None
        except OperationalError as exc:
            if not _is_lock_conflict(exc):
                raise
            return None
        keys = {reservation.key for reservation in ordered}
        if inserted == len(keys):
            return keys
        # A late retry whose reservation was pruned: its stored message answers it (a second round trip, only then).
        async with self._read() as conn:
            rows = await conn.execute(
                select(messages.c.sender_id, messages.c.client_msg_id).where(_key_in(list(keys), messages))
            )
            return keys - {(row.sender_id, row.client_msg_id) for row in rows}

    async def _reserve_one(self, reservation: Reservation) -> bool:
        for attempt in range(_LOCK_RETRIES):
            try:
                async with self._statement() as conn:
                    inserted = (
                        await conn.execute(self._insert_unless_stored(1), _insert_params([reservation]))
                    ).rowcount
            except IntegrityError:
                return False
            except OperationalError as exc:
                # InnoDB may pick racing inserts of one key as deadlock victims; the key is decided on retry.
                if not _is_lock_conflict(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
            else:
                return inserted == 1
        return False

    async def complete(self, keys: Sequence[DedupKey]) -> None:
        await self._update_each(keys, sent=True)

    async def release(self, keys: Sequence[DedupKey]) -> None:
        await self._update_each(keys, lease_until_ms=0, only_unsent=True)

    async def take_over(self, reservation: Reservation, lease_until_ms: int) -> bool:
        async with self._statement() as conn:
            # Compare-and-set on the lease: of several retries seeing it expired, one moves it and wins.
            result = await conn.execute(
                update(reservations)
                .where(
                    _is(reservation.key),
                    reservations.c.sent.is_(False),
                    reservations.c.lease_until_ms == reservation.lease_until_ms,
                )
                .values(lease_until_ms=lease_until_ms)
            )
        return result.rowcount == 1

    async def _update_each(self, keys: Sequence[DedupKey], *, only_unsent: bool = False, **values: Any) -> None:
        async with self._write() as conn:
            for chunk in chunks(sorted(keys)):
                stmt = update(reservations).where(_key_in(chunk))
                if only_unsent:
                    stmt = stmt.where(reservations.c.sent.is_(False))
                await conn.execute(stmt.values(**values))
