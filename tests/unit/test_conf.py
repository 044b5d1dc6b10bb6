from __future__ import annotations

from pathlib import Path

import pytest

from tidings import conf
from tidings.pkg.conf import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["dev.yaml", "stack.yaml", "cluster.yaml", "production.example.yaml"])
def test_the_shipped_config_files_are_valid(name: str) -> None:
    conf.load(ROOT / "configs" / name)


def test_yaml_values_are_read_and_the_environment_overrides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  url: sqlite+aiosqlite:///x.db\n  pool_size: 3\nlog:\n  level: DEBUG\n")
    monkeypatch.setenv("TIDINGS_DATABASE__POOL_SIZE", "7")
    settings = conf.load(path)
    assert settings.database.url == "sqlite+aiosqlite:///x.db"
    assert settings.database.pool_size == 7
    assert settings.log.level == "DEBUG"


def test_defaults_are_the_embedded_adapters() -> None:
    settings = conf.load(None)
    assert settings.database.url.startswith("sqlite+aiosqlite")
    assert settings.bus.kind == "embedded"
    assert settings.search.kind == "fts5"
    assert settings.modules.bff.http.port == 8080


@pytest.mark.parametrize("module", ["bff", "account", "chat", "job", "task", "admin"])
def test_one_setting_of_a_module_from_the_environment_leaves_its_other_listeners_in_place(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = getattr(conf.load(None).modules, module)
    monkeypatch.setenv(f"TIDINGS_MODULES__{module.upper()}__DIAL", "ipv4:10.0.0.1:9000,10.0.0.2:9000")
    moved = getattr(conf.load(None).modules, module)
    assert moved.dial == "ipv4:10.0.0.1:9000,10.0.0.2:9000"
    assert (moved.http, moved.grpc) == (default.http, default.grpc)


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  urll: x\n")
    with pytest.raises(ConfigError, match=r"database\.urll: unknown key"):
        conf.load(path)


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("modules:\n  bff:\n    http:\n      port: eighty\n")
    with pytest.raises(ConfigError, match=r"modules\.bff\.http\.port"):
        conf.load(path)


def test_a_wrong_type_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_APP__STOP_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match=r"app\.stop_timeout_s"):
        conf.load(None)


def test_a_missing_file_and_bad_yaml_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        conf.load(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("database: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        conf.load(broken)


def test_cors_is_off_by_default_and_takes_origins_from_yaml_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = conf.load(None)
    assert settings.modules.bff.cors_origins == settings.modules.admin.cors_origins == []
    path = tmp_path / "c.yaml"
    origins = "['HTTPS://Chat.Example.com:443', 'http://127.0.0.1:5173', 'http://[::1]:8000']"
    path.write_text(f"modules:\n  bff:\n    http: {{port: 8080}}\n    cors_origins: {origins}\n")
    settings = conf.load(path)
    assert settings.modules.bff.cors_origins == [
        "https://chat.example.com",
        "http://127.0.0.1:5173",
        "http://[::1]:8000",
    ]
    monkeypatch.setenv("TIDINGS_MODULES__BFF__CORS_ORIGINS", '["https://ops.example.com"]')
    assert conf.load(path).modules.bff.cors_origins == ["https://ops.example.com"]


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("*", "'\\*' is not allowed"),
        ("https://chat.example.com/", "no path"),
        ("https://chat.example.com/app", "no path"),
        ("chat.example.com", "must be an origin"),
        ("ftp://chat.example.com", "must be an origin"),
        ("https://user@chat.example.com", "no path, query or user"),
        ("https://chat.example.com:99999", "port"),
    ],
)
def test_a_cors_origin_that_is_no_origin_is_named(tmp_path: Path, origin: str, why: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  admin:\n    http: {{port: 8085}}\n    cors_origins: ['{origin}']\n")
    with pytest.raises(ConfigError, match=rf"modules\.admin\.cors_origins\.0: .*{why}"):
        conf.load(path)


def test_a_cluster_cache_names_one_node_of_database_0(tmp_path: Path) -> None:
    assert conf.load(ROOT / "configs" / "cluster.yaml").cache.cluster
    path = tmp_path / "c.yaml"
    path.write_text("cache:\n  url: redis://127.0.0.1:7001/3\n  cluster: true\n")
    with pytest.raises(ConfigError, match="cache"):
        conf.load(path)


def test_a_read_replica_is_optional_and_needs_mysql_on_both_sides(tmp_path: Path) -> None:
    database = conf.load(ROOT / "configs" / "cluster.yaml").database
    assert (database.url.split("@")[1], database.replica_url.split("@")[1]) == (
        "127.0.0.1:3316/tidings",
        "127.0.0.1:3317/tidings",
    )
    assert conf.load(ROOT / "configs" / "stack.yaml").database.replica_url == ""
    path = tmp_path / "r.yaml"
    path.write_text("database:\n  url: sqlite+aiosqlite:///x.db\n  replica_url: mysql+aiomysql://u:p@h:3317/t\n")
    with pytest.raises(ConfigError, match="database"):
        conf.load(path)


def test_the_cluster_config_replicates_the_bus_on_three_brokers() -> None:
    bus = conf.load(ROOT / "configs" / "cluster.yaml").bus
    assert bus.kind == "kafka"
    assert len(bus.bootstrap_servers.split(",")) == 3
    assert (bus.replication_factor, bus.min_insync_replicas) == (3, 2)


def test_the_bus_replicates_once_and_leaves_the_isr_minimum_to_the_brokers_by_default() -> None:
    bus = conf.load(None).bus
    assert (bus.replication_factor, bus.min_insync_replicas) == (1, None)


@pytest.mark.parametrize(
    ("yaml", "why"),
    [
        ("bus:\n  replication_factor: 0\n", r"bus\.replication_factor"),
        ("bus:\n  min_insync_replicas: 0\n", r"bus\.min_insync_replicas"),
        ("bus:\n  replication_factor: 3\n  min_insync_replicas: 4\n", r"min_insync_replicas \(4\) cannot exceed"),
        ("bus:\n  min_insync_replicas: 2\n", r"min_insync_replicas \(2\) cannot exceed bus\.replication_factor \(1\)"),
    ],
)
def test_a_bus_replication_that_cannot_work_is_named(tmp_path: Path, yaml: str, why: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=why):
        conf.load(path)
