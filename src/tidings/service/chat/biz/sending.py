"""Sending: dedup on ``(sender_id, client_msg_id)``, a seq per conversation, and the bus as the commit point.

A client message id names one message of its sender: a retry in the same conversation answers the original, a
reuse in another conversation is refused (409 CLIENT_MSG_ID_REUSED) and sends nothing.

The protocol, for one client message id:

1. A durable *reservation* (unique key ``(sender_id, client_msg_id)``) is inserted before anything is produced. It
   holds the whole message (snowflake id, seq, text, time) and a lease; the insert decides who owns the send when
   retries race, also across instances and restarts.
2. The owner produces the message and, once the bus acknowledged it, answers and marks the reservation sent.
3. Anyone else with the same key waits for the owner's outcome: ``sent`` answers the original message. If the
   owner failed (it releases its lease) or died (the lease expires), a retry takes the reservation over and
   produces the *same* message again (same id and seq). That may store it on the bus twice, which the consumers
   absorb (persist is idempotent on ``message_id`` and ``(conversation_id, seq)``), but it can never make two
   different messages of one client message id, and a failed produce never blocks retries for good.

Order: conversations are spread over a few in-process *lanes* (by id), each one pipeline. A lane takes all its
waiting sends, of every conversation in it, as one batch and, for each batch, allocates seqs, reserves, and produces
them with one ordered ``publish_many`` before it starts the next batch. So within one chat instance a conversation's
log order equals its seq order, and a busy instance pays one database round trip per step for a whole batch rather
than per conversation. Marking reservations sent is off the critical path: it runs beside the next batches, all keys
waiting meanwhile in one statement. Across instances seqs stay unique and
increase in allocation order (the allocator is shared), but two instances' produces may reach the log in either
order; consumers do not rely on log order (persist writes by seq, clients treat gaps as "sync this range"). A send
acknowledged before another one starts has the lower seq, whichever instances served them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from tidings.pkg import errors, log
from tidings.pkg.errors import TidingsError
from tidings.service.chat.biz.model import Message, Sent
from tidings.service.chat.biz.ports import (
    Clock,
    DedupKey,
    DedupStore,
    EventPublisher,
    IdGen,
    Reservation,
    SeqAllocator,
)


@dataclass(frozen=True)
class SendPolicy:
    # How long an owner may take to produce before a retry may take its reservation over; above the bus timeout,
    # so a slow produce is normally not repeated (repeating it would be harmless, only wasteful).
    lease_ms: int = 15_000
    # Sends produced in one round trip at most (one lane's batch).
    max_batch: int = 512
    # Pipelines that run side by side; a conversation always goes through the same one.
    lanes: int = 8
    # How often a retry looks at a reservation that another instance is producing.
    poll_interval_s: float = 0.05


@dataclass(frozen=True)
class _Taken:
    """The key was reserved already (found before, or lost the insert race): resolve through the reservation."""


_TAKEN: Final = _Taken()


@dataclass
class _Pending:
    conversation_id: int
    sender_id: int
    client_msg_id: str
    text: str
    # The request's context, so the event carries the request's trace, not the pipeline's.
    context: contextvars.Context
    future: asyncio.Future[Sent | _Taken] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def key(self) -> DedupKey:
        return (self.sender_id, self.client_msg_id)

    def settle(self, outcome: Sent | _Taken | BaseException) -> None:
        if self.future.done():  # the caller went away (cancelled); the outcome is in the reservation anyway
            return
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


def _copy(error: TidingsError) -> TidingsError:
    return TidingsError(error.code, error.reason, error.message, error.metadata, domain=error.domain)


def _same_conversation(message: Message, conversation_id: int) -> Message:
    """``message`` if it belongs to ``conversation_id``; a client_msg_id names one message of its sender, so its
    reuse in another conversation is refused (409) rather than answered with a message from elsewhere."""
    if message.conversation_id != conversation_id:
        raise errors.chat.client_msg_id_reused(
            "this client_msg_id was used for a message in another conversation; use a new one",
            conversation_id=str(message.conversation_id),
        )
    return message


def _unavailable(what: str) -> TidingsError:
    return errors.common.unavailable(f"{what}; retry with the same client_msg_id")


class Sender:
    def __init__(
        self,
        seqs: SeqAllocator,
        dedup: DedupStore,
        publisher: EventPublisher,
        ids: IdGen,
        clock: Clock,
        policy: SendPolicy,
    ) -> None:
        self._seqs = seqs
        self._dedup = dedup
        self._publisher = publisher
        self._ids = ids
        self._clock = clock
        self._policy = policy
        self._log = log.get("chat.send")
        self._queues: dict[int, list[_Pending]] = {}
        self._pipelines: dict[int, asyncio.Task[None]] = {}
        # Keys produced but not yet marked sent, and the one task marking them.
        self._unmarked: list[DedupKey] = []
        self._marking: asyncio.Task[None] | None = None
        # Sends in progress here, by key: a retry racing the original in this instance waits for it directly.
        self._in_flight: dict[DedupKey, asyncio.Future[Sent | None]] = {}

    async def send(self, conversation_id: int, sender_id: int, client_msg_id: str, text: str) -> Sent:
        """The message as committed to the bus (the original one for a retry); the caller checked access."""
        key = (sender_id, client_msg_id)
        while (running := self._in_flight.get(key)) is not None:
            # None: that attempt failed, so this one tries again (after it, never beside it).
            if (outcome := await asyncio.shield(running)) is not None:
                return Sent(_same_conversation(outcome.message, conversation_id), duplicate=True)
        done: asyncio.Future[Sent | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = done
        result: Sent | None = None
        try:
            result = await self._send(conversation_id, sender_id, client_msg_id, text)
            return result
        finally:
            del self._in_flight[key]
            done.set_result(result)

    async def _send(self, conversation_id: int, sender_id: int, client_msg_id: str, text: str) -> Sent:
        pending = _Pending(conversation_id, sender_id, client_msg_id, text, contextvars.copy_context())
        lane = conversation_id % self._policy.lanes
        self._queues.setdefault(lane, []).append(pending)
        if lane not in self._pipelines:
            self._pipelines[lane] = asyncio.create_task(self._run_pipeline(lane), name=f"chat send lane {lane}")
        outcome = await pending.future
        if isinstance(outcome, Sent):
            return outcome
        return await self._resolve(pending.key, conversation_id)

    # -- the pipeline of one lane ---------------------------------------------------------------------------------

    async def _run_pipeline(self, lane: int) -> None:
        try:
            while queue := self._queues.get(lane):
                batch = queue[: self._policy.max_batch]
                del queue[: self._policy.max_batch]
                await self._commit_batch(lane, batch)
        finally:
            # No await between the last look at the queue and leaving: a send enqueued later starts a new pipeline.
            left = self._queues.pop(lane, None) or []
            self._pipelines.pop(lane, None)
            # Only when the pipeline itself was cancelled (the process stops): nobody is left waiting for nothing.
            for pending in left:
                pending.settle(_unavailable("the chat instance is stopping"))

    async def _commit_batch(self, lane: int, batch: list[_Pending]) -> None:
        try:
            await self._commit(lane, batch)
        except BaseException as exc:
            # A bug or a cancellation must not leave callers waiting forever.
            if not isinstance(exc, TidingsError):
                self._log.error("send pipeline failed", exc_info=exc, lane=lane)
            for pending in batch:
                # One error object per waiter: each raises it in its own task, with its own traceback.
                pending.settle(_copy(exc) if isinstance(exc, TidingsError) else errors.common.internal("send failed"))
            if not isinstance(exc, Exception):
                raise

    async def _commit(self, lane: int, batch: list[_Pending]) -> None:
        try:
            known = await self._dedup.get_many([pending.key for pending in batch])
        except Exception as exc:
            self._log.warning("dedup lookup failed", error=repr(exc), lane=lane)
            raise _unavailable("cannot check for an earlier send (database unavailable)") from exc
        for pending in batch:
            if pending.key in known:
                pending.settle(_TAKEN)
        fresh = [pending for pending in batch if pending.key not in known]
        if not fresh:
            return
        seqs = await self._allocate(lane, fresh)
        now = self._clock.now_ms()
        lease_until = now + self._policy.lease_ms
        drafts = [
            Reservation(
                Message(self._ids.next_id(), p.conversation_id, seq, p.sender_id, p.client_msg_id, p.text, now),
                sent=False,
                lease_until_ms=lease_until,
            )
            for p, seq in zip(fresh, seqs, strict=True)
        ]
        try:
            ours = await self._dedup.reserve(drafts)
        except Exception as exc:
            self._log.warning("reservation failed", error=repr(exc), lane=lane)
            raise _unavailable("cannot reserve the message id (database unavailable)") from exc
        # A key reserved between the lookup and the insert (a racing retry elsewhere): theirs, our seq is a gap.
        owned = [(p, d) for p, d in zip(fresh, drafts, strict=True) if d.key in ours]
        for pending, draft in zip(fresh, drafts, strict=True):
            if draft.key not in ours:
                pending.settle(_TAKEN)
        if not owned:
            return
        keys = [draft.key for _, draft in owned]
        try:
            await self._publisher.message_sent([(draft.message, p.context) for p, draft in owned])
        except Exception as exc:
            self._log.warning("produce failed", error=repr(exc), lane=lane, messages=len(keys))
            await self._release(keys)
            for pending, _ in owned:
                pending.settle(_unavailable("the message could not be committed to the bus"))
            return
        for pending, draft in owned:
            pending.settle(Sent(draft.message, duplicate=False))
        self._mark_sent(keys)

    async def _allocate(self, lane: int, fresh: list[_Pending]) -> list[int]:
        """The next seqs of each conversation in the batch (allocated side by side), in the batch's order."""
        counts: dict[int, int] = {}
        for pending in fresh:
            counts[pending.conversation_id] = counts.get(pending.conversation_id, 0) + 1
        # gather, not a TaskGroup: the caller needs the one TidingsError below, not an ExceptionGroup.
        answers = await asyncio.gather(
            *(self._seqs.allocate(cid, n) for cid, n in counts.items()), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                self._log.warning("seq allocation failed", error=repr(answer), lane=lane)
                raise _unavailable("cannot assign sequence numbers (seq store unavailable)") from answer
        given = {
            cid: iter(seqs) for cid, seqs in zip(counts, answers, strict=True) if not isinstance(seqs, BaseException)
        }
        return [next(given[pending.conversation_id]) for pending in fresh]

    def _mark_sent(self, keys: Sequence[DedupKey]) -> None:
        """Mark reservations sent beside the next batches: one statement for all keys waiting meanwhile."""
        self._unmarked.extend(keys)
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark_waiting(), name="chat send mark sent")

    async def _mark_waiting(self) -> None:
        try:
            while self._unmarked:
                keys, self._unmarked = self._unmarked, []
                await self._complete(keys)
        finally:
            self._marking = None

    async def _release(self, keys: Sequence[DedupKey]) -> None:
        try:
            await self._dedup.release(keys)
        except Exception as exc:  # the leases expire by themselves; retries only wait longer
            self._log.warning("releasing reservations failed", error=repr(exc), keys=len(keys))

    async def _complete(self, keys: Sequence[DedupKey]) -> None:
        try:
            await self._dedup.complete(keys)
        except Exception as exc:
            # The messages are committed (the bus has them). A retry finds the reservation unsent, waits for the
            # lease and produces the same message again, which the consumers absorb.
            self._log.warning("marking reservations sent failed", error=repr(exc), keys=len(keys))

    # -- a key that was reserved already ---------------------------------------------------------------------------

    async def _resolve(self, key: DedupKey, conversation_id: int) -> Sent:
        """Wait for the owner of ``key`` to finish, or take its reservation over once its lease ran out; 409 if
        ``key`` was reserved for another conversation."""
        while True:
            try:
                reservation = (await self._dedup.get_many([key])).get(key)
            except Exception as exc:
                raise _unavailable("cannot look up the earlier send (database unavailable)") from exc
            if reservation is None:
                # Reservations are not deleted while a retry can still come; treat it as a lost race and report it.
                raise errors.common.conflict("the earlier send of this client_msg_id vanished; retry")
            _same_conversation(reservation.message, conversation_id)
            if reservation.sent:
                return Sent(reservation.message, duplicate=True)
            now = self._clock.now_ms()
            if reservation.lease_until_ms > now:
                wait_s = min(self._policy.poll_interval_s, (reservation.lease_until_ms - now) / 1000)
                await asyncio.sleep(wait_s)
                continue
            if await self._take_over(reservation, now):
                return Sent(reservation.message, duplicate=True)

    async def _take_over(self, reservation: Reservation, now_ms: int) -> bool:
        try:
            won = await self._dedup.take_over(reservation, now_ms + self._policy.lease_ms)
        except Exception as exc:
            raise _unavailable("cannot take over the earlier send (database unavailable)") from exc
        if not won:
            return False
        try:
            await self._publisher.message_sent([(reservation.message, contextvars.copy_context())])
        except Exception as exc:
            await self._release([reservation.key])
            raise _unavailable("the message could not be committed to the bus") from exc
        await self._complete([reservation.key])
        return True
