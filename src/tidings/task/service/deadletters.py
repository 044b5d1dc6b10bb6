"""The dead-letters entry of the schedule: on its schedule it logs the report (its items: the records waiting); run
by an operator (``tidings task run dead-letters``) it also prints it, or replays the records they chose."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tidings.pkg.logger import Logger
from tidings.task.biz.deadletters import BadSelection, DeadLetters, OffsetRange, ReplayResult, Report, Selection
from tidings.task.biz.progress import NO_PROGRESS, Progress
from tidings.task.service.jobs import Job

DEAD_LETTERS = "dead-letters"

# ``--offset``: [PARTITION:]FIRST[-LAST]
_OFFSETS = re.compile(r"(?:(\d+):)?(\d+)(?:-(\d+))?")

# A report reads every dead-letter topic whole: after an incident that is many records.
DEAD_LETTERS_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class DeadLetterRequest:
    """What an operator asked of a run: its report or replay printed line by line through ``show``; with
    ``replay``, the run replays those records instead of reporting."""

    show: Callable[[str], None]
    replay: Selection | None = None


class DeadLettersEntry:
    def __init__(self, dead_letters: DeadLetters, logger: Logger, request: DeadLetterRequest | None = None) -> None:
        if request is not None and request.replay is not None:
            dead_letters.check(request.replay)  # a bad choice stops here, before any run starts
        self._dead_letters = dead_letters
        self._log = logger
        self._request = request

    async def run(self, progress: Progress = NO_PROGRESS) -> int:
        """The report (logged on the schedule, printed for an operator): how many records wait in the dead-letter
        topics. Or the operator's replay (logged and printed): how many records were published again."""
        if self._request is not None and self._request.replay is not None:
            result = await self._dead_letters.replay(self._request.replay, progress=progress)
            self._log.info(
                "dead letters replayed",
                topic=result.selection.topic,
                replayed=result.replayed,
                replayed_before=result.already,
                reasons=sorted(result.selection.reasons),
                offsets=[_offsets(offsets) for offsets in result.selection.offsets],
            )
            self._print(replay_lines(result))
            return result.replayed
        report = await self._dead_letters.report(progress)
        if self._request is not None:  # an operator's run: the report is its output
            self._print(report_lines(report))
            return report.total
        for topic in report.topics:
            if topic.count:
                self._log.warning(
                    "dead letters waiting",
                    topic=topic.topic,
                    records=topic.count,
                    replayed=topic.replayed,
                    reasons=topic.by_reason,
                    oldest=_utc(topic.oldest_ms),
                )
        self._log.info("dead letters reported", records=report.total, topics=len(report.topics))
        return report.total

    async def preview(self) -> int:
        """The report, or which records the replay would publish (printed for an operator); changes nothing."""
        if self._request is not None and self._request.replay is not None:
            result = await self._dead_letters.replay(self._request.replay, dry_run=True)
            self._print(replay_lines(result))
            return result.replayed
        report = await self._dead_letters.report()
        self._print(report_lines(report))
        return report.total

    def _print(self, lines: list[str]) -> None:
        if self._request is not None:
            for line in lines:
                self._request.show(line)


def dead_letters(entry: DeadLettersEntry, *, schedule: str | None) -> Job:
    return Job(DEAD_LETTERS, schedule=schedule, run=entry.run, preview=entry.preview, timeout_s=DEAD_LETTERS_TIMEOUT_S)


def report_lines(report: Report) -> list[str]:
    """The report as a table: one line per dead-letter topic."""
    rows = [("DEAD-LETTER TOPIC", "RECORDS", "REPLAYED", "OLDEST (UTC)", "REASONS")]
    for topic in report.topics:
        if not topic.exists:
            rows.append((topic.topic, "-", "-", "-", "no such topic yet (no consumer of its source has started)"))
            continue
        reasons = ", ".join(f"{reason} {count}" for reason, count in topic.by_reason.items())
        rows.append((topic.topic, str(topic.count), str(topic.replayed), _utc(topic.oldest_ms) or "-", reasons))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return [*lines, f"{report.total} dead letters in all"]


def replay_lines(result: ReplayResult) -> list[str]:
    """What a replay published (or would), one line per record as far as ``shown`` goes."""
    selection = result.selection
    verb = "would replay" if result.dry_run else "replayed"
    head = f"{verb} {result.replayed} records of {selection.topic}"
    if result.already:
        head += f"; {result.already} chosen were replayed before and are skipped"
    lines = [head + (" (dry run: nothing published)" if result.dry_run else "")]
    for letter in result.shown:
        lines.append(
            f"  {letter.partition}:{letter.offset}  {_utc(letter.timestamp_ms)}  {letter.reason or 'unknown'}"
            f"  -> {letter.origin_topic}  (group {letter.group or '?'}: {letter.error[:120]})"
        )
    if result.replayed > len(result.shown):
        lines.append(f"  ... and {result.replayed - len(result.shown)} more")
    return lines


def selection(topic: str, reasons: list[str], offsets: list[str], limit: int | None) -> Selection:
    """The replay an operator's options choose; ``BadSelection`` naming the option that cannot be read.

    An offset is ``OFFSET`` or ``FIRST-LAST`` (inclusive), of partition 0 (a dead-letter topic's only one) unless
    prefixed ``PARTITION:``.
    """
    return Selection(topic, frozenset(reasons), tuple(_offset_range(value) for value in offsets), limit)


def _offset_range(value: str) -> OffsetRange:
    written = _OFFSETS.fullmatch(value.strip())
    if written is None:
        raise BadSelection("--offset", f"{value!r} is not OFFSET, FIRST-LAST or PARTITION:FIRST-LAST")
    partition, first, last = written.groups()
    return OffsetRange(int(partition or 0), int(first), int(last or first))


def _offsets(offsets: OffsetRange) -> str:
    return f"{offsets.partition}:{offsets.first}-{offsets.last}"


def _utc(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
