"""Sending: dedup on ``(sender_id, client_msg_id)``, a seq per conversation, and the bus as the commit point.

A client message id names one message of its sender: a retry in the same conversation answers the original, a
reuse in another conversation is refused (409 CLIENT_MSG_ID_REUSED) and sends nothing.

The protocol, for one client message id:

1. A durable *reservation* (unique key ``(sender_id, client_msg_id)``) is inserted before anything is produced. It
   holds the whole message (snowflake id, seq, text, time) and a lease; the insert decides who owns the send when
   retries race, also across instances and restarts.
2. The owner produces the message and, once the bus acknowledged it, answers. Nothing more is written: the
   reservation counts as sent once its message is stored (by the persist job, normally well under a second later).
3. Anyone else with the same key waits for the owner's outcome: ``sent`` answers the original message. If the
   owner failed (it releases its lease) or died (the lease expires), a retry takes the reservation over and
   produces the *same* message again (same id and seq). That may store it on the bus twice, which the consumers
   absorb (persist is idempotent on ``message_id`` and ``(conversation_id, seq)``), but it can never make two
   different messages of one client message id, and a failed produce never blocks retries for good.

Batches: every send waiting in this instance (whose caller still waits) goes into the next batch, whatever its
conversation, and a batch costs the same few round trips however many sends it holds: one cache read for the access
checks (memberships, and blocks of direct chats), one for the seqs of all its conversations, one database insert for
the reservations, one produce. Two batches are in flight at most, one per stage: while one is being produced, the
next is checked, given seqs and reserved; it is produced only after the one before it was. So within one chat
instance a conversation's log order equals its seq order, and the busier the instance, the bigger (not the more) its
batches. A send that fails a check (not a member, blocked) is answered alone; its neighbours go on. Across instances
seqs stay unique and increase in allocation order (the allocator is shared), but two instances' produces may reach
the log in either order; consumers do not rely on log order (persist writes by seq, clients treat gaps as "sync this
range"). A send acknowledged before another one starts has the lower seq, whichever instances served them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from tidings.api.chat.v1 import errors as chat_errors
from tidings.api.common.v1 import errors as common_errors
from tidings.pkg.clock import Clock
from tidings.pkg.errors import TidingsError
from tidings.pkg.logger import Logger
from tidings.service.chat.biz.access import Access
from tidings.service.chat.biz.model import Sent
from tidings.service.chat.biz.ports import (
    DedupKey,
    DedupStore,
    EventPublisher,
    IdGen,
    Reservation,
    SeqAllocator,
)
from tidings.service.chat.message import Message

T = TypeVar("T")


@dataclass(frozen=True)
class SendPolicy:
    # How long an owner may take to produce before a retry may take its reservation over; above the bus timeout,
    # so a slow produce is normally not repeated (repeating it would be harmless, only wasteful).
    lease_ms: int = 15_000
    # Sends in one batch at most.
    max_batch: int = 512
    # A stage of a batch (check, allocate and reserve; or produce) gives up after this long. The pipeline runs
    # outside any request, so this, not a request's deadline, bounds its I/O; above the bus and database timeouts.
    stage_timeout_s: float = 12.0
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


def _same_conversation(message: Message, conversation_id: int) -> Message:
    """``message`` if it belongs to ``conversation_id``; a client_msg_id names one message of its sender, so its
    reuse in another conversation is refused (409) rather than answered with a message from elsewhere."""
    if message.conversation_id != conversation_id:
        raise chat_errors.client_msg_id_reused(
            "this client_msg_id was used for a message in another conversation; use a new one",
            conversation_id=str(message.conversation_id),
        )
    return message


def _unavailable(what: str) -> TidingsError:
    return common_errors.unavailable(f"{what}; retry with the same client_msg_id")


class Sender:
    def __init__(
        self,
        access: Access,
        seqs: SeqAllocator,
        dedup: DedupStore,
        publisher: EventPublisher,
        ids: IdGen,
        clock: Clock,
        policy: SendPolicy,
        logger: Logger,
    ) -> None:
        self._access = access
        self._seqs = seqs
        self._dedup = dedup
        self._publisher = publisher
        self._ids = ids
        self._clock = clock
        self._policy = policy
        self._log = logger
        self._queue: list[_Pending] = []
        self._pipeline: asyncio.Task[None] | None = None
        # Sends in progress here, by key: a retry racing the original in this instance waits for it directly.
        self._in_flight: dict[DedupKey, asyncio.Future[Sent | None]] = {}

    async def send(self, conversation_id: int, sender_id: int, client_msg_id: str, text: str) -> Sent:
        """The message as committed to the bus (the original one for a retry), once the sender may write there."""
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
        self._queue.append(pending)
        if self._pipeline is None:
            # In a context of its own: the pipeline serves every request, and must not run under the deadline (or
            # in the trace) of the one that happened to start it.
            self._pipeline = asyncio.create_task(
                self._run_pipeline(), name="chat send pipeline", context=contextvars.Context()
            )
        outcome = await pending.future
        if isinstance(outcome, Sent):
            return outcome
        return await self._resolve(pending.key, conversation_id)

    # -- the pipeline: check, allocate and reserve one batch while the batch before it is produced -----------------

    async def _run_pipeline(self) -> None:
        producing: asyncio.Task[None] | None = None
        try:
            while True:
                if not self._queue:
                    if producing is None:
                        break
                    # Sends that arrive while the last batch is produced form the next one.
                    await producing
                    producing = None
                    continue
                batch = self._next_batch()
                if not batch:
                    continue
                owned = await self._guarded(batch, self._prepare(batch)) or []
                if producing is not None:
                    await producing  # the batch before first: the log keeps each conversation's seq order
                producing = asyncio.create_task(self._guarded(batch, self._produce(owned))) if owned else None
        finally:
            # No await between the last look at the queue and leaving: a send enqueued later starts a new pipeline.
            left, self._queue = self._queue, []
            self._pipeline = None
            # Only when the pipeline itself was cancelled (the process stops): nobody is left waiting for nothing.
            for pending in left:
                pending.settle(_unavailable("the chat instance is stopping"))

    def _next_batch(self) -> list[_Pending]:
        """Up to ``max_batch`` queued sends, leaving out those whose caller gave up (its deadline) while they waited.

        Not only to save the work: the in-flight map forgets a send once its caller is gone, so the caller's retry
        can join the queue beside it. Reserving both in one batch would make two messages of one key, each answered
        as ours; without the abandoned one, the retry is the key's only send in the batch.
        """
        batch: list[_Pending] = []
        taken = 0
        for pending in self._queue:
            if len(batch) == self._policy.max_batch:
                break
            taken += 1
            if not pending.future.done():
                batch.append(pending)
        del self._queue[:taken]
        return batch

    async def _guarded(self, batch: list[_Pending], step: Awaitable[T]) -> T | None:
        """Run a stage under ``stage_timeout_s``; whatever it raises answers every send of the batch not answered
        yet, never a hang."""
        try:
            async with asyncio.timeout(self._policy.stage_timeout_s):
                return await step
        except TimeoutError:
            self._log.warning("send stage timed out", batch=len(batch), timeout_s=self._policy.stage_timeout_s)
            for pending in batch:
                pending.settle(_unavailable("the send timed out"))
            return None
        except BaseException as exc:
            # A bug or a cancellation must not leave callers waiting forever.
            if not isinstance(exc, TidingsError):
                self._log.error("send pipeline failed", exc_info=exc, batch=len(batch))
            for pending in batch:
                # One error object per waiter: each raises it in its own task, with its own traceback.
                pending.settle(exc.copy() if isinstance(exc, TidingsError) else common_errors.internal("send failed"))
            if not isinstance(exc, Exception):
                raise
            return None

    async def _prepare(self, batch: list[_Pending]) -> list[tuple[_Pending, Reservation]]:
        """Check, allocate and reserve: the sends of the batch this instance now owns, each with its message."""
        admitted = await self._admit(batch)
        if not admitted:
            return []
        seqs = await self._allocate(admitted)
        now = self._clock.now_ms()
        lease_until = now + self._policy.lease_ms
        drafts = [
            Reservation(
                Message(self._ids.next_id(), p.conversation_id, seq, p.sender_id, p.client_msg_id, p.text, now),
                sent=False,
                lease_until_ms=lease_until,
            )
            for p, seq in zip(admitted, seqs, strict=True)
        ]
        try:
            ours = await self._dedup.reserve(drafts)
        except Exception as exc:
            self._log.warning("reservation failed", error=repr(exc), batch=len(drafts))
            raise _unavailable("cannot reserve the message id (database unavailable)") from exc
        # A key reserved before (a retry) or meanwhile (a racing retry elsewhere): theirs, our seq is a gap.
        owned: list[tuple[_Pending, Reservation]] = []
        for pending, draft in zip(admitted, drafts, strict=True):
            if draft.key in ours:
                owned.append((pending, draft))
            else:
                pending.settle(_TAKEN)
        return owned

    async def _admit(self, batch: list[_Pending]) -> list[_Pending]:
        """The sends whose senders may write to their conversations; the others are answered with the reason."""
        refusals = await self._access.refusals([(p.conversation_id, p.sender_id) for p in batch])
        admitted = []
        for pending, refusal in zip(batch, refusals, strict=True):
            if refusal is None:
                admitted.append(pending)
            else:
                pending.settle(refusal)
        return admitted

    async def _produce(self, owned: list[tuple[_Pending, Reservation]]) -> None:
        keys = [draft.key for _, draft in owned]
        try:
            await self._publisher.message_sent([(draft.message, p.context) for p, draft in owned])
        except Exception as exc:
            self._log.warning("produce failed", error=repr(exc), messages=len(keys))
            await self._release(keys)
            for pending, _ in owned:
                pending.settle(_unavailable("the message could not be committed to the bus"))
            return
        # Not marked sent here: the stored message tells a later retry that it was (``DedupStore.get_many``).
        for pending, draft in owned:
            pending.settle(Sent(draft.message, duplicate=False))

    async def _allocate(self, fresh: list[_Pending]) -> list[int]:
        """The next seqs of each conversation in the batch (one call for all of them), in the batch's order."""
        counts: dict[int, int] = {}
        for pending in fresh:
            counts[pending.conversation_id] = counts.get(pending.conversation_id, 0) + 1
        try:
            given = await self._seqs.allocate_many(counts)
        except Exception as exc:
            self._log.warning("seq allocation failed", error=repr(exc), conversations=len(counts))
            raise _unavailable("cannot assign sequence numbers (seq store unavailable)") from exc
        handed = {cid: iter(seqs) for cid, seqs in given.items()}
        return [next(handed[pending.conversation_id]) for pending in fresh]

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
                raise common_errors.conflict("the earlier send of this client_msg_id vanished; retry")
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
