"""The job module runs the consumer groups its settings list, so a group can run (and be restarted, and scaled) in a
process of its own; every group by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from tidings import conf
from tidings.bootstrap import Infra
from tidings.conf import AuthConf, JobConf, Modules, Settings
from tidings.job import wire
from tidings.pkg.conf import BusConf, CacheConf, ConfigError, DatabaseConf, Listen, SearchConf


def settings(tmp_path: Path, groups: list[str] | None) -> Settings:
    job = JobConf(http=Listen(port=0)) if groups is None else JobConf(http=Listen(port=0), groups=groups)
    return Settings(
        modules=Modules(job=job),
        database=DatabaseConf(url=f"sqlite+aiosqlite:///{tmp_path}/tidings.db"),
        cache=CacheConf(url="memory://"),
        bus=BusConf(kind="embedded", path=str(tmp_path / "events.db")),
        search=SearchConf(url=str(tmp_path / "search.db")),
        auth=AuthConf(internal_secret=SecretStr("job-groups-internal-secret-0123456789abcdef")),
    )


async def consumers(tmp_path: Path, groups: list[str] | None) -> list[str]:
    infra = Infra(settings(tmp_path, groups))
    try:
        module = await wire.wire(infra, registry=CollectorRegistry())
        return [server.name for server in module.servers if server.name != "job"]
    finally:
        await infra.close()


async def test_every_group_runs_by_default(tmp_path: Path) -> None:
    # invalidate runs on Redis only: the in-process cache of this config deletes on a timer.
    assert sorted(await consumers(tmp_path, None)) == ["consumer index", "consumer persist", "consumer push"]


async def test_a_process_runs_only_the_groups_it_lists(tmp_path: Path) -> None:
    assert await consumers(tmp_path, ["push"]) == ["consumer push"]
    assert sorted(await consumers(tmp_path, ["persist", "index"])) == ["consumer index", "consumer persist"]


def test_groups_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_MODULES__JOB__GROUPS", '["persist","index"]')
    job = conf.load(None).modules.job
    assert (job.groups, job.http.port) == (["persist", "index"], 8083)


@pytest.mark.parametrize("groups", [[], ["persist", "persist"], ["pesrist"]])
def test_no_group_a_repeated_or_an_unknown_one_is_named(monkeypatch: pytest.MonkeyPatch, groups: list[str]) -> None:
    monkeypatch.setenv("TIDINGS_MODULES__JOB__GROUPS", str(groups).replace("'", '"'))
    with pytest.raises(ConfigError, match=r"modules\.job\.groups"):
        conf.load(None)
