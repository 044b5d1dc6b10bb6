"""The ``tidings`` command: run the whole system, one module, migrations, or benchmarks."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tidings import __version__, migrations
from tidings.admin import wire as admin_wire
from tidings.bench import bench_app
from tidings.bff import wire as bff_wire
from tidings.bootstrap import Infra
from tidings.job import wire as job_wire
from tidings.pkg import conf, db, log, trace
from tidings.pkg.app import App, Module, event_loop_factory
from tidings.pkg.bus import BusError, events
from tidings.pkg.bus.factory import create_bus
from tidings.pkg.cache.invalidation import CACHE_INVALIDATE
from tidings.service.account import wire as account_wire
from tidings.service.chat import topics as chat_topics
from tidings.service.chat import wire as chat_wire
from tidings.task import wire as task_wire

# Every topic Tidings uses; ``tidings migrate`` creates them with their partition counts.
TOPICS = (*chat_topics.ALL, CACHE_INVALIDATE)

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

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file; TIDINGS_* environment variables override it."),
]


class Fatal(Exception):
    """A start-up failure worth one line to the operator, not a traceback."""


def _settings(path: Path | None) -> conf.Settings:
    try:
        return conf.load(path)
    except conf.ConfigError as exc:
        raise Fatal(str(exc)) from None


async def _serve(settings: conf.Settings, names: list[ModuleName], service_name: str) -> None:
    infra = Infra(settings)
    try:
        modules = [await WIRES[name](infra) for name in names]
    except (db.DatabaseUnavailable, conf.ConfigError) as exc:
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
        f"migrated {db.describe(settings.database.url)} to {revision}; topics ready on the {settings.bus.kind} bus"
    )


async def _migrate(settings: conf.Settings, revision: str) -> None:
    """Schema first, then the topics with their explicit partition counts (the broker never creates them)."""
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


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
