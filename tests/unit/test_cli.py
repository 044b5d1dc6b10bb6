"""The ``tidings`` command as an operator meets it: help, and one clear line when it cannot start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tidings import cli
from tidings.pkg.bus import Record, TopicSpec
from tidings.pkg.bus.deadletter import dead_letter_event
from tidings.pkg.bus.embedded import EmbeddedLog

TIDINGS = [sys.executable, "-m", "tidings"]
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIDINGS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )


def test_help_lists_the_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("dev", "serve", "migrate", "version"):
        assert command in result.stdout


def test_an_unknown_config_key_ends_the_process_with_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("cache:\n  ur1: redis://127.0.0.1:6379\n")
    result = run("serve", "job", "--config", str(config))
    assert result.returncode != 0
    assert result.stderr.strip() == "tidings: invalid config: cache.ur1: unknown key"
    assert "Traceback" not in result.stderr + result.stdout


def test_a_wrong_type_in_the_environment_is_named() -> None:
    result = run("serve", "job", env={"TIDINGS_MODULES__JOB__HTTP__PORT": "http"})
    assert result.returncode != 0
    assert "modules.job.http.port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_cron_expression_or_an_unknown_task_stops_the_task_module_with_one_line_naming_the_key(
    tmp_path: Path,
) -> None:
    config = tmp_path / "tasks.yaml"
    config.write_text('task:\n  schedules:\n    refresh-token-retention: "every hour"\n')
    bad_cron = run("serve", "task", "--config", str(config), cwd=tmp_path)
    assert bad_cron.returncode != 0
    [line] = bad_cron.stderr.strip().splitlines()
    assert line.startswith("tidings: invalid config: task.schedules.refresh-token-retention: ")
    assert "not a cron expression" in line
    config.write_text('task:\n  schedules:\n    no-such-task: "0 * * * *"\n')
    unknown = run("serve", "task", "--config", str(config), cwd=tmp_path)
    assert unknown.returncode != 0
    [line] = unknown.stderr.strip().splitlines()
    assert line.startswith("tidings: task.schedules.no-such-task: unknown task (known: ")
    known = line.split("(known: ")[1].rstrip(")").split(", ")
    assert known == sorted(known)
    assert {"refresh-token-retention", "reservations", "stats", "reindex", "retention"} <= set(known)


def test_an_unreachable_database_is_named_without_a_traceback() -> None:
    result = run(
        "serve",
        "job",
        env={
            "TIDINGS_DATABASE__URL": "mysql+aiomysql://tidings:secret@127.0.0.1:1/tidings",
            "TIDINGS_DATABASE__CONNECT_TIMEOUT_S": "2",
        },
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tidings: cannot reach mysql at 127.0.0.1:1/tidings")
    assert "secret" not in result.stderr


async def test_migrate_applies_the_schema_and_creates_every_topic_with_its_partition_count(tmp_path: Path) -> None:
    result = run("migrate", "--config", str(CONFIGS / "dev.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".data" / "tidings.db").exists()
    log = EmbeddedLog(str(tmp_path / ".data" / "events.db"), timeout_s=5)
    await log.start()
    try:
        for topic in cli.TOPICS:
            assert await log.partition_count(topic.name) == topic.partitions
    finally:
        await log.close()


def test_task_list_run_and_dry_run_on_the_embedded_database(tmp_path: Path) -> None:
    config = str(CONFIGS / "dev.yaml")
    listed = run("task", "list", "--config", config, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == ["TASK", "SCHEDULE", "LAST", "RUN", "(UTC)", "OUTCOME", "ITEMS", "NEXT", "RUN", "(UTC)"]
    assert ["refresh-token-retention", "17", "*", "*", "*", "*", "never", "due", "now"] in [row.split() for row in rows]
    assert ["stats", "10", "*", "*", "*", "*", "never", "due", "now"] in [row.split() for row in rows]
    assert ["reindex", "on", "demand", "never", "-"] in [row.split() for row in rows]
    dry = run("task", "run", "refresh-token-retention", "--dry-run", "--config", config, cwd=tmp_path)
    assert dry.stdout.strip() == "refresh-token-retention: a run now would handle 0 items (dry run: nothing changed)"
    assert "never" in run("task", "list", "--config", config, cwd=tmp_path).stdout  # a dry run is not a run
    done = run("task", "run", "refresh-token-retention", "--config", config, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refresh-token-retention: ok, 0 items in ")
    [row] = [
        row
        for row in run("task", "list", "--config", config, cwd=tmp_path).stdout.splitlines()
        if row.startswith("refresh-token-retention ")
    ]
    assert row.split()[6:9][2] == "ok"  # the last run's date, time and outcome
    # Nothing to count yet: the open hour and day, stored as zeros.
    rolled_up = run("task", "run", "stats", "--config", config, cwd=tmp_path)
    assert rolled_up.stdout.splitlines()[-1].startswith("stats: ok, 2 items in "), rolled_up.stderr
    # Nothing to copy yet: the empty index rebuilt and swapped in, with no progress lines off a terminal.
    rebuilt = run("task", "run", "reindex", "--config", config, cwd=tmp_path)
    assert rebuilt.stdout.splitlines()[-1].startswith("reindex: ok, 0 items in "), rebuilt.stderr
    unknown = run("task", "run", "no-such-task", "--config", config, cwd=tmp_path)
    assert unknown.returncode != 0
    [line] = unknown.stderr.strip().splitlines()
    assert line.startswith("tidings: no task named 'no-such-task' (known: ")


async def test_dead_letters_are_reported_and_a_replay_publishes_a_record_once_on_the_embedded_log(
    tmp_path: Path,
) -> None:
    config = str(CONFIGS / "dev.yaml")
    source, dlq = "chat.message.sent", "chat.message.sent.dlq"
    log = EmbeddedLog(str(tmp_path / ".data" / "events.db"), timeout_s=5)
    await log.start()
    try:
        await log.ensure_topics([TopicSpec(source, 12), TopicSpec(dlq, 1)])
        poison = Record(source, 3, 41, b"7", b"poison", (("event-type", b"tidings.chat.v1.MessageSent"),))
        await log.publish_many([dead_letter_event(poison, group="persist", reason="handler_error", error=KeyError())])
    finally:
        await log.close()

    report = run("task", "run", "dead-letters", "--dry-run", "--config", config, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    lines = report.stdout.splitlines()
    assert lines[0].split() == ["DEAD-LETTER", "TOPIC", "RECORDS", "REPLAYED", "OLDEST", "(UTC)", "REASONS"]
    [row] = [line.split() for line in lines if line.startswith(f"{dlq} ")]
    assert (row[1], row[2], row[-2:]) == ("1", "0", ["handler_error", "1"])
    assert lines[-1] == "dead-letters: a run now would handle 1 items (dry run: nothing changed)"

    replay = ["task", "run", "dead-letters", "--replay", "--topic", dlq, "--reason", "handler_error"]
    once = run(*replay, "--config", config, cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    assert f"replayed 1 records of {dlq}" in once.stdout.splitlines()
    assert once.stdout.splitlines()[-1].startswith("dead-letters: ok, 1 items in ")
    twice = run(*replay, "--config", config, cwd=tmp_path)
    assert f"replayed 0 records of {dlq}; 1 chosen were replayed before and are skipped" in twice.stdout
    log = EmbeddedLog(str(tmp_path / ".data" / "events.db"), timeout_s=5)
    await log.start()
    try:
        replayed = [record async for batch in log.read_from_start(source) for record in batch]
    finally:
        await log.close()
    assert [(r.key, r.value, r.headers) for r in replayed] == [(poison.key, poison.value, poison.headers)]


def test_replay_options_out_of_place_are_named() -> None:
    for args, message in [
        (["stats", "--replay"], "tidings: --replay is an option of dead-letters only"),
        (["dead-letters", "--reason", "x"], "tidings: --reason chooses records to replay: add --replay"),
        (["dead-letters", "--replay"], "tidings: --replay needs --topic: the dead-letter topic to replay from"),
        (
            ["dead-letters", "--replay", "--topic", "t.dlq", "--offset", "3-"],
            "tidings: --offset: '3-' is not OFFSET, FIRST-LAST or PARTITION:FIRST-LAST",
        ),
    ]:
        refused = run("task", "run", *args)
        assert refused.returncode == 2
        assert refused.stderr.strip() == message
