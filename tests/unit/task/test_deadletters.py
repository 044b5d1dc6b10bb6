"""The dead-letters task: a report per dead-letter topic, and replays of chosen records that publish each record
once; its ports' contracts on the fakes, the embedded log and SQLite (the embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contracts.task_deadletters import DeadLetterLogContract, Kill, ReplayLogContract, Republished
from tests.contracts.task_runs import held_lease
from tests.unit.task.fakes import FakeDeadLetterLog, FakeReplayLog, RecordingLogger
from tidings.pkg.bus import Headers, Record, TopicSpec
from tidings.pkg.bus.deadletter import dead_letter_event, dead_letter_topic
from tidings.pkg.bus.embedded import EmbeddedLog
from tidings.task.biz.deadletters import (
    BadSelection,
    DeadLetterLog,
    DeadLetters,
    OffsetRange,
    ReplayLog,
    Selection,
    TopicReport,
)
from tidings.task.biz.errors import Unavailable
from tidings.task.biz.progress import NO_PROGRESS
from tidings.task.data.deadletters import BusDeadLetters, SQLReplayLog
from tidings.task.service.deadletters import (
    DeadLetterRequest,
    DeadLettersEntry,
    dead_letters,
    report_lines,
    selection,
)

SENT, READ, GONE = "chat.message.sent.dlq", "chat.conversation.read.dlq", "cache.invalidate.dlq"


# -- the ports' contracts ---------------------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> str:
    return "t"


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "events.db", timeout_s=5)
    await log.start()
    yield log
    await log.close()


class TestDeadLetterLogInMemory(DeadLetterLogContract):
    @pytest.fixture
    def fake(self) -> FakeDeadLetterLog:
        return FakeDeadLetterLog()

    @pytest.fixture
    def dead_letters(self, fake: FakeDeadLetterLog) -> DeadLetterLog:
        return fake

    @pytest.fixture
    def kill(self, fake: FakeDeadLetterLog) -> Kill:
        async def dead_letter(
            source: str, key: bytes, value: bytes, headers: Headers, *, group: str, reason: str, error: Exception
        ) -> None:
            fake.dead_letter(
                dead_letter_topic(source),
                reason=reason,
                key=key,
                value=value,
                headers=headers,
                group=group,
                error=f"{type(error).__name__}: {error}",
            )

        return dead_letter

    @pytest.fixture
    def republished(self, fake: FakeDeadLetterLog) -> Republished:
        async def at(source: str) -> list[tuple[bytes, bytes, Headers]]:
            return [
                (letter.key, letter.value, letter.headers) for letter in fake.published if letter.origin_topic == source
            ]

        return at


class TestDeadLetterLogOnTheEmbeddedLog(DeadLetterLogContract):
    @pytest.fixture
    def dead_letters(self, embedded: EmbeddedLog) -> DeadLetterLog:
        async def bus() -> EmbeddedLog:
            return embedded

        return BusDeadLetters(bus, batch=2)

    @pytest.fixture
    def kill(self, embedded: EmbeddedLog) -> Kill:
        return bus_kill(embedded)

    @pytest.fixture
    def republished(self, embedded: EmbeddedLog) -> Republished:
        async def at(source: str) -> list[tuple[bytes, bytes, Headers]]:
            return [(r.key, r.value, r.headers) async for batch in embedded.read_from_start(source) for r in batch]

        return at


def bus_kill(bus: EmbeddedLog) -> Kill:
    """Dead-letters records as ``OrderedConsumer`` does: ``dead_letter_event`` to ``<source>.dlq``."""
    offsets: dict[str, int] = {}

    async def dead_letter(
        source: str, key: bytes, value: bytes, headers: Headers, *, group: str, reason: str, error: Exception
    ) -> None:
        await bus.ensure_topics([TopicSpec(source, 1), TopicSpec(dead_letter_topic(source), 1)])
        offsets[source] = offsets.get(source, -1) + 1
        record = Record(source, 0, offsets[source], key, value, headers)
        await bus.publish_many([dead_letter_event(record, group=group, reason=reason, error=error)])

    return dead_letter


# ``engine``: a migrated SQLite database (tests/unit/conftest.py).
@pytest.fixture(params=["fake", "sqlite"])
async def replays(request: pytest.FixtureRequest, engine: AsyncEngine) -> ReplayLog:
    if request.param == "fake":
        return FakeReplayLog()
    return SQLReplayLog(engine, await held_lease(engine, "dead-letters"))


class TestReplayLog(ReplayLogContract):
    pass


# -- the report -------------------------------------------------------------------------------------------------------


def task(log: FakeDeadLetterLog, replays: FakeReplayLog | None = None) -> DeadLetters:
    return DeadLetters(log, replays or FakeReplayLog(), [SENT, READ, GONE], lambda: 99_000)


async def test_the_report_counts_each_topic_by_reason_with_its_oldest_record() -> None:
    log = FakeDeadLetterLog(batch=2)
    log.dead_letter(SENT, reason="handler_error", timestamp_ms=5_000)
    log.dead_letter(SENT, reason="unknown_version", timestamp_ms=3_000)
    log.dead_letter(SENT, reason="handler_error", timestamp_ms=4_000)
    log.topics[READ] = []
    report = await task(log).report()
    assert report.topics == [
        TopicReport(SENT, True, 3, {"handler_error": 2, "unknown_version": 1}, 3_000, 0),
        TopicReport(READ, True, 0, {}, None, 0),
        TopicReport(GONE, exists=False),
    ]
    assert report.total == 3


# -- replays ----------------------------------------------------------------------------------------------------------


def five_letters() -> FakeDeadLetterLog:
    log = FakeDeadLetterLog(batch=2)
    for n, reason in enumerate(
        ["handler_error", "unknown_version", "handler_error", "handler_error", "unknown_version"]
    ):
        log.dead_letter(SENT, reason=reason, key=f"{n}".encode())
    return log


async def test_a_replay_publishes_the_chosen_records_as_they_were_and_never_twice() -> None:
    log, replays = five_letters(), FakeReplayLog()
    dead = task(log, replays)
    chosen = Selection(SENT, reasons=frozenset({"handler_error"}))
    first = await dead.replay(chosen)
    assert (first.replayed, first.already) == (3, 0)
    assert [letter.key for letter in log.published] == [b"0", b"2", b"3"]
    assert {letter.origin_topic for letter in log.published} == {"chat.message.sent"}
    again = await dead.replay(chosen)
    assert (again.replayed, again.already) == (0, 3)
    assert len(log.published) == 3
    everything = await dead.replay(Selection(SENT))
    assert (everything.replayed, everything.already) == (2, 3)
    assert [letter.key for letter in log.published] == [b"0", b"2", b"3", b"1", b"4"]
    [sent] = (await dead.report()).topics[:1]
    assert (sent.count, sent.replayed) == (5, 5)


async def test_a_replay_by_offsets_and_limit() -> None:
    log = five_letters()
    dead = task(log)
    result = await dead.replay(Selection(SENT, offsets=(OffsetRange(0, 1, 3), OffsetRange(1, 0, 9)), limit=2))
    assert result.replayed == 2
    assert [letter.offset for letter in log.published] == [1, 2]
    await dead.replay(Selection(SENT, offsets=(OffsetRange(0, 1, 3),)))
    assert [letter.offset for letter in log.published] == [1, 2, 3]


async def test_a_dry_run_of_a_replay_lists_what_it_would_publish_and_publishes_nothing() -> None:
    log, replays = five_letters(), FakeReplayLog()
    result = await task(log, replays).replay(Selection(SENT, reasons=frozenset({"unknown_version"})), dry_run=True)
    assert (result.replayed, result.dry_run) == (2, True)
    assert [letter.offset for letter in result.shown] == [1, 4]
    assert (log.published, replays.replays) == ([], {})


async def test_a_replay_cut_short_goes_on_with_what_it_had_not_published() -> None:
    log, replays = five_letters(), FakeReplayLog()
    dead = task(log, replays)
    log.fail_republish = True
    with pytest.raises(Unavailable):
        await dead.replay(Selection(SENT))
    assert replays.replays == {}  # logged only once published
    assert (await dead.replay(Selection(SENT))).replayed == 5
    assert [letter.offset for letter in log.published] == [0, 1, 2, 3, 4]


async def test_a_replay_of_a_topic_no_consumer_created_publishes_nothing() -> None:
    assert (await task(FakeDeadLetterLog()).replay(Selection(GONE))).replayed == 0


@pytest.mark.parametrize(
    ("chosen", "field"),
    [
        (Selection("chat.message.sent"), "--topic"),  # the source, not its dead letters
        (Selection(SENT, offsets=(OffsetRange(0, 5, 4),)), "--offset"),
        (Selection(SENT, limit=0), "--limit"),
    ],
)
def test_a_replay_that_cannot_be_is_refused_naming_the_option(chosen: Selection, field: str) -> None:
    with pytest.raises(BadSelection) as refused:
        task(FakeDeadLetterLog()).check(chosen)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


# -- the entry --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offsets", "ranges"),
    [
        (["7"], (OffsetRange(0, 7, 7),)),
        (["3-9", "2:4-5"], (OffsetRange(0, 3, 9), OffsetRange(2, 4, 5))),
    ],
)
def test_offsets_as_an_operator_writes_them(offsets: list[str], ranges: tuple[OffsetRange, ...]) -> None:
    assert selection(SENT, ["a"], offsets, 3) == Selection(SENT, frozenset({"a"}), ranges, 3)


@pytest.mark.parametrize("written", ["x", "1-", "-3", "a:1", "1:2:3", ""])
def test_offsets_that_cannot_be_read_are_refused(written: str) -> None:
    with pytest.raises(BadSelection, match=r"^--offset: "):
        selection(SENT, [], [written], None)


async def test_on_its_schedule_the_task_logs_the_report_and_counts_the_records_waiting() -> None:
    log = five_letters()
    logger = RecordingLogger()
    job = dead_letters(DeadLettersEntry(task(log), logger), schedule="25 * * * *")
    assert await job.run(NO_PROGRESS) == 5
    assert [(level, event) for level, event, _ in logger.lines] == [
        ("warning", "dead letters waiting"),
        ("info", "dead letters reported"),
    ]
    assert logger.lines[0][2]["reasons"] == {"handler_error": 3, "unknown_version": 2}
    assert log.published == []


async def test_for_an_operator_the_task_prints_the_report_or_replays() -> None:
    log, printed = five_letters(), list[str]()
    report = DeadLettersEntry(task(log), RecordingLogger(), DeadLetterRequest(printed.append))
    assert await report.run() == 5
    assert printed == report_lines(await task(log).report())
    assert printed[1].split()[:3] == [SENT, "5", "0"]
    assert printed[-1] == "5 dead letters in all"
    assert printed[3].split()[:2] == [GONE, "-"]  # no consumer of its source has started

    printed.clear()
    replay = DeadLettersEntry(task(log), RecordingLogger(), DeadLetterRequest(printed.append, Selection(SENT, limit=1)))
    assert await replay.preview() == 1
    assert printed[0] == f"would replay 1 records of {SENT} (dry run: nothing published)"
    assert log.published == []
    printed.clear()
    assert await replay.run() == 1
    assert printed[0] == f"replayed 1 records of {SENT}"
    assert printed[1].split()[0] == "0:0"


def test_a_bad_replay_is_refused_before_any_run() -> None:
    with pytest.raises(BadSelection, match=r"^--topic: "):
        DeadLettersEntry(task(FakeDeadLetterLog()), RecordingLogger(), DeadLetterRequest(print, Selection("nope")))
