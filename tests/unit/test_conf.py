from __future__ import annotations

from pathlib import Path

import pytest

from tidings import conf
from tidings.pkg.conf import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["dev.yaml", "stack.yaml", "production.example.yaml"])
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
