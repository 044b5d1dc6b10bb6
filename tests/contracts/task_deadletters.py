"""The contracts of the dead-letters task's ports: the dead-letter topics (``DeadLetterLog``) and the log of replays
(``ReplayLog``).

A subclass of ``DeadLetterLogContract`` provides ``dead_letters`` (the port), ``kill`` (dead-letters a record of a
source topic, as a consumer does) and ``republished`` (what a source topic received from a replay); topics are named
under ``prefix``. One of ``ReplayLogContract`` provides ``replays``, an empty log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import pytest

from tidings.pkg.bus import Headers
from tidings.task.biz.deadletters import DeadLetter, DeadLetterLog, MissingTopic, ReplayLog


class Kill(Protocol):
    async def __call__(
        self, source: str, key: bytes, value: bytes, headers: Headers, *, group: str, reason: str, error: Exception
    ) -> None: ...


Republished = Callable[[str], Awaitable[list[tuple[bytes, bytes, Headers]]]]


async def read_all(dead_letters: DeadLetterLog, topic: str) -> list[DeadLetter]:
    return [letter async for letters in dead_letters.read(topic) for letter in letters]


class DeadLetterLogContract:
    async def test_a_topic_no_consumer_created_is_missing(self, dead_letters: DeadLetterLog, prefix: str) -> None:
        with pytest.raises(MissingTopic):
            await read_all(dead_letters, f"{prefix}.never.dlq")

    async def test_dead_letters_say_where_they_came_from_and_why(
        self, dead_letters: DeadLetterLog, kill: Kill, prefix: str
    ) -> None:
        source = f"{prefix}.sent"
        await kill(
            source,
            b"7",
            b"poison",
            (("event-type", b"x"),),
            group="persist",
            reason="handler_error",
            error=ValueError("cannot parse"),
        )
        await kill(source, b"8", b"future", (), group="push", reason="unknown_version", error=LookupError("v9"))
        first, second = await read_all(dead_letters, f"{source}.dlq")
        assert (first.topic, first.origin_topic, first.group, first.reason) == (
            f"{source}.dlq",
            source,
            "persist",
            "handler_error",
        )
        assert first.error == "ValueError: cannot parse"
        assert (first.key, first.value, first.headers) == (b"7", b"poison", (("event-type", b"x"),))
        assert (second.reason, second.group, second.error, second.key, second.headers) == (
            "unknown_version",
            "push",
            "LookupError: v9",
            b"8",
            (),
        )
        assert first.position < second.position
        assert first.timestamp_ms > 0

    async def test_republished_records_reach_their_source_topic_as_they_were(
        self, dead_letters: DeadLetterLog, kill: Kill, republished: Republished, prefix: str
    ) -> None:
        source = f"{prefix}.read"
        for n in range(3):
            await kill(
                source, f"{n}".encode(), b"v", (("n", f"{n}".encode()),), group="g", reason="r", error=ValueError()
            )
        letters = await read_all(dead_letters, f"{source}.dlq")
        await dead_letters.republish(letters[1:])
        assert await republished(source) == [(b"1", b"v", (("n", b"1"),)), (b"2", b"v", (("n", b"2"),))]


def letter(topic: str, offset: int, partition: int = 0) -> DeadLetter:
    return DeadLetter(topic, partition, offset, 1_000, topic.removesuffix(".dlq"), "g", "r", "")


class ReplayLogContract:
    async def test_nothing_was_replayed(self, replays: ReplayLog) -> None:
        assert await replays.replayed("a.dlq", [(0, 0), (0, 1)]) == set()

    async def test_a_replay_is_kept_by_topic_partition_and_offset(self, replays: ReplayLog) -> None:
        await replays.record([letter("a.dlq", 3), letter("a.dlq", 5), letter("a.dlq", 3, partition=1)], 10)
        assert await replays.replayed("a.dlq", [(0, 3), (0, 4), (0, 5), (1, 3), (1, 5)]) == {(0, 3), (0, 5), (1, 3)}
        assert await replays.replayed("b.dlq", [(0, 3)]) == set()

    async def test_recording_a_replay_again_changes_nothing(self, replays: ReplayLog) -> None:
        await replays.record([letter("a.dlq", 1)], 10)
        await replays.record([letter("a.dlq", 1), letter("a.dlq", 2)], 20)
        assert await replays.replayed("a.dlq", [(0, 1), (0, 2)]) == {(0, 1), (0, 2)}

    async def test_many_positions_at_once(self, replays: ReplayLog) -> None:
        await replays.record([letter("a.dlq", n) for n in range(0, 1200, 2)], 10)
        found = await replays.replayed("a.dlq", [(0, n) for n in range(1200)])
        assert found == {(0, n) for n in range(0, 1200, 2)}
