"""Reindex: the search index rebuilt from the database into new versions, then handed to searches at once.

The index follows the events (the ``index`` job), so it drifts from the database only through lost events, a bug or
a change of its mappings; a rebuild puts it right. Each kind (messages, users) gets a new version beside the one
searched (``IndexAdmin.create_next``), which every writer writes as well from ``settle_s`` later on: the run waits
that long before it copies, so a document the index job writes after the copy passed it is in the new version too.
Then it copies chat's messages by ``(conversation_id, seq)`` and account's users by id, in bounded batches, and
goes over what was created (messages) or updated (users) since the rebuild began, less ``margin_s``: a message the
index job indexed before the new version was written, but the persist job stored only after the copy had passed
its place, is caught there. At last it swaps both new versions in (searches read the old ones until that moment)
and drops the old ones.

Every copy is versioned like the events' writes, so it never overwrites what the index job wrote since: a message
gets its send's version, and a recalled one a tombstone whose version beats a replayed send and any rename of its
sender but not its real recall (``rebuilt_tombstone_version``). A sender's rename that landed between the copy's
read of names and its write is caught by renaming, once more, the senders updated since the rebuild began.

The checkpoint (fenced by the task's lease) holds the versions being built, the phase and the last place copied, so
a run that is killed or times out goes on into the same versions, from there, at the next ``tidings task run``
(meanwhile every writer keeps writing both versions). A runner that lost its lease has its next checkpoint refused,
which stops it; the one batch it may have written meanwhile is versioned like any copy, so it changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from tidings.pkg.logger import Logger
from tidings.search.documents import message_doc
from tidings.search.model import (
    KINDS,
    IndexAdmin,
    IndexKind,
    MessageDoc,
    SearchWriter,
    UserDoc,
    rebuilt_tombstone_version,
    version_at,
)
from tidings.service.chat.message import Message
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.biz.runs import Checkpoint

# The phases of a rebuild, in order; a finished rebuild leaves no checkpoint.
MESSAGES, USERS, RECENT_MESSAGES, RECENT_USERS, SWAP = "messages", "users", "recent-messages", "recent-users", "swap"
PHASES = (MESSAGES, USERS, RECENT_MESSAGES, RECENT_USERS, SWAP)


@dataclass(frozen=True)
class StoredUser:
    id: int
    username: str
    display_name: str
    updated_at_ms: int


class IndexSource(Protocol):
    """What the index is rebuilt from: chat's messages and account's users, read in pages."""

    async def estimate(self) -> int:
        """About how many messages and users there are (a large table's count is the database's estimate)."""
        ...

    async def messages_after(self, conversation_id: int, seq: int, limit: int) -> list[Message]:
        """Up to ``limit`` messages after ``(conversation_id, seq)``, in that order."""
        ...

    async def messages_since(self, since_ms: int, after: tuple[int, ...], limit: int) -> list[Message]:
        """Up to ``limit`` messages created at or after ``since_ms``, ordered by ``recent_key``, after ``after``
        (``()``: from the first)."""
        ...

    async def users_after(self, user_id: int, limit: int) -> list[StoredUser]:
        """Up to ``limit`` users with ids above ``user_id``, ascending."""
        ...

    async def users_updated_since(self, since_ms: int, user_id: int, limit: int) -> list[StoredUser]:
        """Up to ``limit`` users updated at or after ``since_ms`` with ids above ``user_id``, ascending."""
        ...

    async def sender_names(self, user_ids: Collection[int]) -> dict[int, str]:
        """The display names of the users that exist among ``user_ids``."""
        ...


def recent_key(message: Message) -> tuple[int, ...]:
    """Where a message stands among the recent ones: the order of the messages' creation-time index."""
    return (message.created_at_ms, message.sender_id, message.conversation_id, message.seq)


@dataclass(frozen=True)
class Rebuild:
    """A rebuild under way, as its checkpoint keeps it: the versions being built and the ones searched when it
    began (dropped at its end), by kind; when it began; its phase, the last place it copied there and how many
    documents it has copied in all."""

    versions: dict[IndexKind, int]
    old: dict[IndexKind, int]
    since_ms: int
    phase: str = MESSAGES
    after: tuple[int, ...] = ()
    done: int = 0

    def encode(self) -> str:
        return json.dumps(
            {
                "v": [self.versions["messages"], self.versions["users"]],
                "o": [self.old["messages"], self.old["users"]],
                "s": self.since_ms,
                "p": self.phase,
                "a": list(self.after),
                "n": self.done,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def decode(checkpoint: str) -> Rebuild | None:
        """The rebuild a checkpoint holds; ``None`` for none (or one this code cannot read: start afresh)."""
        try:
            saved = json.loads(checkpoint)
            messages, users = (int(version) for version in saved["v"])
            old_messages, old_users = (int(version) for version in saved["o"])
            rebuild = Rebuild(
                {"messages": messages, "users": users},
                {"messages": old_messages, "users": old_users},
                int(saved["s"]),
                str(saved["p"]),
                tuple(int(value) for value in saved["a"]),
                int(saved["n"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return rebuild if rebuild.phase in PHASES else None


class Reindex:
    """The ``reindex`` task: ``batch`` documents per read and write, ``pause_s`` between batches."""

    def __init__(
        self,
        source: IndexSource,
        index: IndexAdmin,
        writer: SearchWriter,
        checkpoint: Checkpoint,
        now_ms: Callable[[], int],
        logger: Logger,
        *,
        batch: int = 1000,
        pause_s: float = 0.0,
        margin_s: float = 600.0,
    ) -> None:
        self._source = source
        self._index = index
        self._writer = writer
        self._checkpoint = checkpoint
        self._now_ms = now_ms
        self._log = logger
        self._batch = batch
        self._pause_s = pause_s
        self._margin_ms = int(margin_s * 1000)

    async def preview(self) -> int:
        """About how many documents a rebuild copies; changes nothing."""
        return await self._source.estimate()

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """Rebuild (or go on with the rebuild the checkpoint holds) to the end; how many documents were copied."""
        rebuild = await self._resume()
        if rebuild is None:
            rebuild = await self._begin()
        self._log.info(
            "reindex running",
            versions=rebuild.versions,
            replacing=rebuild.old,
            phase=rebuild.phase,
            copied_before=rebuild.done,
        )
        progress.start(await self._source.estimate())
        progress.advance(rebuild.done)
        # Until then a writer elsewhere may still write only the old versions.
        await asyncio.sleep(self._index.settle_s)
        copied = 0
        while rebuild.phase != SWAP:
            phase = rebuild.phase
            rebuild, count = await self._step(rebuild)
            copied += count
            if phase in (MESSAGES, USERS):  # the estimate counts the copy, not the catching up
                progress.advance(count)
            if self._pause_s:
                await asyncio.sleep(self._pause_s)
        await self._swap(rebuild)
        return copied

    async def _resume(self) -> Rebuild | None:
        """The rebuild the checkpoint holds, if its versions are still there to go on with."""
        saved = await self._checkpoint.load_checkpoint()
        rebuild = Rebuild.decode(saved) if saved else None
        if rebuild is None:
            return None
        for kind, version in rebuild.versions.items():
            versions = await self._index.versions(kind)
            if version not in versions.written and version != versions.searched:
                self._log.warning(
                    "reindex starts over: the version it was building is gone", kind=kind, version=version
                )
                return None
        return rebuild

    async def _begin(self) -> Rebuild:
        versions: dict[IndexKind, int] = {}
        old: dict[IndexKind, int] = {}
        for kind in KINDS:
            current = await self._index.versions(kind)
            old[kind] = current.searched
            # A version written but not searched is a rebuild that stopped before it kept its checkpoint: go on there.
            building = [version for version in current.written if version != current.searched]
            versions[kind] = building[-1] if building else await self._index.create_next(kind)
        rebuild = Rebuild(versions, old, self._now_ms())
        await self._checkpoint.save_checkpoint(rebuild.encode())
        return rebuild

    async def _step(self, rebuild: Rebuild) -> tuple[Rebuild, int]:
        """One batch of the rebuild's phase, kept as its checkpoint; the rebuild after it, and documents copied."""
        since = rebuild.since_ms - self._margin_ms
        after: tuple[int, ...]
        if rebuild.phase == MESSAGES:
            conversation_id, seq = rebuild.after or (0, 0)
            messages = await self._source.messages_after(conversation_id, seq, self._batch)
            await self._put_messages(rebuild, messages)
            after = (messages[-1].conversation_id, messages[-1].seq) if messages else ()
            count = len(messages)
        elif rebuild.phase == RECENT_MESSAGES:
            messages = await self._source.messages_since(since, rebuild.after, self._batch)
            await self._put_messages(rebuild, messages)
            after, count = (recent_key(messages[-1]) if messages else ()), len(messages)
        else:
            [user_id] = rebuild.after or (0,)
            if rebuild.phase == USERS:
                users = await self._source.users_after(user_id, self._batch)
            else:
                users = await self._source.users_updated_since(since, user_id, self._batch)
            await self._index.put_users(
                rebuild.versions["users"],
                [UserDoc(u.id, u.username, u.display_name, version_at(u.updated_at_ms)) for u in users],
            )
            if rebuild.phase == RECENT_USERS:
                # A rename that landed between a batch's read of names and its write left the old name there.
                for user in users:
                    await self._writer.rename_sender(user.id, user.display_name)
            after, count = ((users[-1].id,) if users else ()), len(users)
        if count < self._batch:
            next_phase = PHASES[PHASES.index(rebuild.phase) + 1]
            rebuild = replace(rebuild, phase=next_phase, after=(), done=rebuild.done + count)
        else:
            rebuild = replace(rebuild, after=after, done=rebuild.done + count)
        await self._checkpoint.save_checkpoint(rebuild.encode())
        return rebuild, count

    async def _put_messages(self, rebuild: Rebuild, messages: Sequence[Message]) -> None:
        if not messages:
            return
        names = await self._source.sender_names({message.sender_id for message in messages if not message.recalled})
        await self._index.put_messages(rebuild.versions["messages"], [_message_doc(m, names) for m in messages])

    async def _swap(self, rebuild: Rebuild) -> None:
        """Hand searches over to the rebuilt versions, drop the old ones and end the rebuild."""
        for kind, version in rebuild.versions.items():
            await self._index.swap(kind, version)
        for kind, version in rebuild.old.items():
            if version != rebuild.versions[kind]:
                await self._index.drop(kind, version)
        await self._checkpoint.save_checkpoint("")
        self._log.info("reindex swapped", versions=rebuild.versions, dropped=rebuild.old, copied=rebuild.done)


def _message_doc(message: Message, names: dict[int, str]) -> MessageDoc:
    if message.recalled:
        return MessageDoc(
            id=message.id,
            conversation_id=message.conversation_id,
            sender_id=message.sender_id,
            sender_name="",
            seq=message.seq,
            created_at_ms=message.created_at_ms,
            text="",
            recalled=True,
            version=rebuilt_tombstone_version(message.created_at_ms),
        )
    # A sender unknown to account (deleted) is indexed without a name, as the index job does.
    return message_doc(message, names.get(message.sender_id, ""))
