"""``SQLDedupStore``: reservations of ``(sender_id, client_msg_id)`` in the relational store (durable, race-safe)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError

from tidings.pkg.repo import SQLRepo, chunks
from tidings.service.chat.biz.ports import DedupKey, Reservation
from tidings.service.chat.message import Message
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


def _key_in(keys: Sequence[DedupKey]) -> Any:
    """``(sender_id, client_msg_id) IN (...)``: a row-value IN on the primary key (SQLite and MySQL alike)."""
    return tuple_(reservations.c.sender_id, reservations.c.client_msg_id).in_(list(keys))


class SQLDedupStore(SQLRepo):
    async def get_many(self, keys: Sequence[DedupKey]) -> dict[DedupKey, Reservation]:
        """The reservations of ``keys``; one whose message is stored counts as sent, marked or not (the send
        path does not mark its own sends: the persisted message says it all, one UPDATE less per batch)."""
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
        return found

    async def reserve(self, batch: Sequence[Reservation]) -> set[DedupKey]:
        if not batch:
            return set()
        # One key order for every writer: two batches inserting overlapping keys then wait, never deadlock.
        ordered = sorted(batch, key=lambda reservation: reservation.key)
        if await self._insert(ordered):
            return {reservation.key for reservation in ordered}
        # Some key was taken (a retry of an earlier send, or one racing its original): leave out the keys known
        # now and insert the rest together; only if that races too, one at a time, to learn which.
        known = await self.get_many([reservation.key for reservation in ordered])
        rest = [reservation for reservation in ordered if reservation.key not in known]
        if not rest or await self._insert(rest):
            return {reservation.key for reservation in rest}
        ours: set[DedupKey] = set()
        for reservation in rest:
            if await self._reserve_one(reservation):
                ours.add(reservation.key)
        return ours

    async def _insert(self, ordered: Sequence[Reservation]) -> bool:
        """Insert all of them in one statement, or none: ``False`` if a key was taken."""
        try:
            async with self._statement() as conn:
                await conn.execute(insert(reservations), [_reservation_to_row(reservation) for reservation in ordered])
        except IntegrityError:
            return False
        except OperationalError as exc:
            if not _is_lock_conflict(exc):
                raise
            return False
        return True

    async def _reserve_one(self, reservation: Reservation) -> bool:
        for attempt in range(_LOCK_RETRIES):
            try:
                async with self._statement() as conn:
                    await conn.execute(insert(reservations).values(_reservation_to_row(reservation)))
            except IntegrityError:
                return False
            except OperationalError as exc:
                # InnoDB may pick racing inserts of one key as deadlock victims; the key is decided on retry.
                if not _is_lock_conflict(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
            else:
                return True
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
