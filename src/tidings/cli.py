"""The ``tidings`` command: run the whole system, one module, migrations, or benchmarks."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from prometheus_client import CollectorRegistry

from tidings import __version__, conf, migrations
from tidings.admin import wire as admin_wire
from tidings.admin.biz.model import Role
from tidings.bench import bench_app, chaos, soak
from tidings.bff import wire as bff_wire
from tidings.bootstrap import Infra, search_index
from tidings.job import wire as job_wire
from tidings.pkg import db, log, trace
from tidings.pkg.app import App, Module, event_loop_factory
from tidings.pkg.bus import BusError, events
from tidings.pkg.bus.factory import create_bus
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.pkg.conf import ConfigError
from tidings.pkg.errors import TidingsError
from tidings.search.model import SearchUnavailable
from tidings.service.account import topics as account_topics
from tidings.service.account import wire as account_wire
from tidings.service.chat import topics as chat_topics
from tidings.service.chat import wire as chat_wire
from tidings.task import wire as task_wire
from tidings.task.biz.deadletters import BadSelection
from tidings.task.biz.errors import Unavailable as TaskUnavailable
from tidings.task.server import progress
from tidings.task.server.scheduler import RunningElsewhere, Scheduler
from tidings.task.service import deadletters

# Every topic Tidings uses; ``tidings migrate`` creates them with their partition counts.
TOPICS = (*chat_topics.ALL, *account_topics.ALL, CACHE_INVALIDATE)

Wire = Callable[[Infra], Awaitable[Module]]


class ModuleName(StrEnum):
    bff = "bff"
    account = "account"
    chat = "chat"
    job = "job"
    task = "task"
    admin = "admin"


WIRES: dict[ModuleName, Wire] = {
    ModuleName.account: account_wire.wire,
    ModuleName.chat: chat_wire.wire,
    ModuleName.job: job_wire.wire,
    ModuleName.task: task_wire.wire,
    ModuleName.admin: admin_wire.wire,
    ModuleName.bff: bff_wire.wire,
}

app = typer.Typer(
    name="tidings",
    help="Tidings: an instant-messaging backend as a fleet of microservices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(bench_app, name="bench")
app.command("soak")(soak.command)
app.command("chaos")(chaos.command)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file; TIDINGS_* environment variables override it."),
]


T = TypeVar("T")


class Fatal(Exception):
    """A start-up failure worth one line to the operator, not a traceback."""


def _settings(path: Path | None) -> conf.Settings:
    try:
        return conf.load(path)
    except ConfigError as exc:
        raise Fatal(str(exc)) from None


async def _serve(settings: conf.Settings, names: list[ModuleName], service_name: str) -> None:
    infra = Infra(settings)
    try:
        modules = [await WIRES[name](infra) for name in names]
    except (db.DatabaseUnavailable, ConfigError) as exc:
        await infra.close()
        raise Fatal(str(exc)) from None
    except BaseException:
        await infra.close()
        raise
    urls = {label: url for module in modules for label, url in module.urls.items()}

    def announce() -> None:
        # People read this; log collectors read stdout, so it goes to stderr.
        width = max(len(label) for label in urls)
        lines = [f"tidings {service_name} {__version__} is up:"]
        lines += [f"  {label:<{width}}  {url}" for label, url in urls.items()]
        print("\n".join(lines), file=sys.stderr, flush=True)

    process = App(
        service_name,
        [server for module in modules for server in module.servers],
        resources=infra.resources(),
        cleanups=[infra.close],
        stop_timeout_s=settings.app.stop_timeout_s,
    )
    try:
        await process.run(ready=announce)
    except OSError as exc:
        raise Fatal(str(exc.strerror or exc)) from None


def _run(path: Path | None, names: list[ModuleName], service_name: str) -> None:
    try:
        settings = _settings(path)
        log.configure(
            service_name=service_name,
            service_version=__version__,
            level=settings.log.level,
            fmt=settings.log.format,
        )
        trace.configure(service_name, settings.trace)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(settings, names, service_name))
    except Fatal as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def dev(config: ConfigOption = Path("configs/dev.yaml")) -> None:
    """Run every module in one process on the embedded adapters: no servers needed."""
    _run(config, list(ModuleName), "tidings-dev")


@app.command()
def serve(
    module: Annotated[ModuleName, typer.Argument(help="Which module this process runs.")],
    config: ConfigOption = None,
) -> None:
    """Run one module as its own process (scale by running more of them)."""
    _run(config, [module], f"tidings-{module.value}")


@app.command()
def migrate(
    config: ConfigOption = None,
    revision: Annotated[
        str, typer.Option(help="Target revision: every branch's head, or one branch's (chat@head) or revision.")
    ] = "heads",
) -> None:
    """Apply database migrations up to REVISION."""
    try:
        settings = _settings(config)
        asyncio.run(_migrate(settings, revision))
    except Fatal as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"migrated {db.describe(settings.database.url)} to {revision}; topics ready on the {settings.bus.kind} bus;"
        f" {settings.search.kind} search index ready"
    )


async def _migrate(settings: conf.Settings, revision: str) -> None:
    """Schema first, then the topics with their explicit partition counts (the broker never creates them), then the
    search index's templates, first indices and aliases (FTS5: its tables)."""
    engine = db.create_engine(settings.database)
    try:
        await db.ping(engine, settings.database.connect_timeout_s)
    except db.DatabaseUnavailable as exc:
        raise Fatal(str(exc)) from None
    finally:
        await engine.dispose()
    await migrations.upgrade(settings.database.url, revision)
    bus = create_bus(settings.bus, client_id=settings.app.name)
    try:
        await bus.start()
        await bus.ensure_topics(events.Topics(settings.bus.namespace).specs(TOPICS))
    except BusError as exc:
        raise Fatal(str(exc)) from None
    finally:
        await bus.close()
    search = search_index(settings.search)
    try:
        await search.ensure()
    except SearchUnavailable as exc:
        raise Fatal(str(exc)) from None
    finally:
        await search.close()


admin_app = typer.Typer(help="The back office: its operators.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


@admin_app.command("create-operator")
def create_operator(
    username: Annotated[str, typer.Option(help="3-64 characters: letters, digits, '_', '.', '-'.")],
    role: Annotated[Role, typer.Option(help="What the operator may do.")] = Role.VIEWER,
    totp: Annotated[bool, typer.Option(help="Require a one-time code from an authenticator app at login.")] = False,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input instead of asking for it.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create an operator of the back office (the first one, or any from a script): asks for the password (at least
    12 characters) and, with --totp, prints the authenticator enrolment link once."""
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )

    async def run() -> tuple[str, str]:
        infra = Infra(_settings(config))
        try:
            staff = await admin_wire.operators(infra)
            idgen = await infra.idgen()
            await idgen.start()
            try:
                operator, secret = await staff.create(username, password, role, totp=totp)
            finally:
                await idgen.stop()
            return f"operator {operator.username} ({operator.role.value}) created, id {operator.id}", (
                staff.provisioning_uri(operator, secret) if secret else ""
            )
        except (db.DatabaseUnavailable, ConfigError) as exc:
            raise Fatal(str(exc)) from None
        except TidingsError as exc:
            raise Fatal(f"{exc.reason}: {exc.message} {_fields(exc)}".strip()) from None
        finally:
            await infra.close()

    try:
        done, uri = asyncio.run(run())
    except Fatal as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(done)
    if uri:
        typer.echo(f"add it to an authenticator app (shown once): {uri}")


def _fields(error: TidingsError) -> str:
    return "; ".join(f"{v.field}: {v.description}" for v in error.violations)


task_app = typer.Typer(help="The task module's schedule: what runs when, and a task run now.", no_args_is_help=True)
app.add_typer(task_app, name="task")


def _with_scheduler(
    path: Path | None,
    use: Callable[[Scheduler], Awaitable[T]],
    dead_letter_request: deadletters.DeadLetterRequest | None = None,
) -> T:
    """``use`` the task module's scheduler on the configured database, or exit with one line saying why not."""

    async def run() -> T:
        infra = Infra(_settings(path))
        try:
            scheduler = await task_wire.build(
                infra, registry=CollectorRegistry(), dead_letter_request=dead_letter_request
            )
            return await use(scheduler)
        except (db.DatabaseUnavailable, ConfigError, TaskUnavailable, BadSelection) as exc:
            raise Fatal(str(exc)) from None
        finally:
            await infra.close()

    try:
        return asyncio.run(run())
    except Fatal as exc:
        typer.echo(f"tidings: {exc}", err=True)
        raise typer.Exit(1) from None


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@task_app.command("list")
def task_list(config: ConfigOption = None) -> None:
    """Each task: its schedule (cron, UTC, or on demand), its last run and how it ended, and when it runs next."""
    tasks = _with_scheduler(config, lambda scheduler: scheduler.status())
    rows = [("TASK", "SCHEDULE", "LAST RUN (UTC)", "OUTCOME", "ITEMS", "NEXT RUN (UTC)")]
    for task in tasks:
        last = task.last
        rows.append(
            (
                task.name,
                task.schedule or "on demand",
                _utc(last.started_at_ms) if last else "never",
                last.outcome if last else "",
                str(last.items) if last else "",
                "-" if task.next_at_ms is None else "due now" if task.due else _utc(task.next_at_ms),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@task_app.command("run")
def task_run(
    name: Annotated[str, typer.Argument(help="The task, as `tidings task list` names it.")],
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say how many items a run would handle; change nothing.")
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="dead-letters: publish the chosen records of --topic again to their source topic (each only once);"
            " with --dry-run, list them.",
        ),
    ] = False,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="dead-letters --replay: the dead-letter topic, as the report names it."),
    ] = None,
    reason: Annotated[
        list[str] | None,
        typer.Option(
            "--reason", help="dead-letters --replay: only records dead-lettered for this reason (repeatable)."
        ),
    ] = None,
    offset: Annotated[
        list[str] | None,
        typer.Option(
            "--offset",
            help="dead-letters --replay: only these records: OFFSET, FIRST-LAST, or PARTITION:FIRST-LAST when the"
            " dead-letter topic has several partitions (repeatable).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="dead-letters --replay: at most this many records.")
    ] = None,
) -> None:
    """Run one task now under its lease, recorded like a scheduled run (not while another process runs it).

    dead-letters prints its report; with --replay it replays the records chosen instead.
    """
    request = _dead_letter_request(name, replay, topic, reason or [], offset or [], limit)

    async def run(scheduler: Scheduler) -> str:
        if name not in scheduler.names:  # before a progress bar is drawn for it
            raise Fatal(f"no task named {name!r} (known: {', '.join(scheduler.names)})")
        try:
            if dry_run:
                return (
                    f"{name}: a run now would handle {await scheduler.preview(name)} items (dry run: nothing changed)"
                )
            with progress.shown(name) as shown:  # a bar on a terminal (stderr), a line now and then elsewhere
                done = await scheduler.run_now(name, shown)
        except KeyError:
            raise Fatal(f"no task named {name!r} (known: {', '.join(scheduler.names)})") from None
        except ValueError as exc:
            raise Fatal(str(exc)) from None
        except RunningElsewhere:
            raise Fatal(f"{name} is running in another task process now; try again when it is done") from None
        took_s = ((done.finished_at_ms or done.started_at_ms) - done.started_at_ms) / 1000
        detail = f" ({done.error})" if done.error else ""
        return f"{name}: {done.outcome}, {done.items} items in {took_s:.1f} s{detail}"

    typer.echo(_with_scheduler(config, run, request))


def _dead_letter_request(
    name: str, replay: bool, topic: str | None, reasons: list[str], offsets: list[str], limit: int | None
) -> deadletters.DeadLetterRequest | None:
    """What ``task run`` asks of dead-letters (its report printed, or a replay); exits naming a misplaced option."""

    def refuse(message: str) -> typer.Exit:
        typer.echo(f"tidings: {message}", err=True)
        return typer.Exit(2)

    chosen = [option for option, given in (("--topic", topic), ("--reason", reasons), ("--offset", offsets)) if given]
    chosen += ["--limit"] if limit is not None else []
    if name != deadletters.DEAD_LETTERS:
        if replay or chosen:
            raise refuse(f"{(['--replay'] if replay else chosen)[0]} is an option of {deadletters.DEAD_LETTERS} only")
        return None
    if not replay:
        if chosen:
            raise refuse(f"{chosen[0]} chooses records to replay: add --replay")
        return deadletters.DeadLetterRequest(show=typer.echo)
    if topic is None:
        raise refuse("--replay needs --topic: the dead-letter topic to replay from")
    try:
        selection = deadletters.selection(topic, reasons, offsets, limit)
    except BadSelection as exc:
        raise refuse(str(exc)) from None
    return deadletters.DeadLetterRequest(show=typer.echo, replay=selection)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
