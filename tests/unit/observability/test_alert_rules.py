"""The Prometheus alert rules in deploy/ load: ``promtool check rules`` (Debian's prometheus package) accepts them,
and the Grafana dashboard is valid JSON that queries only metrics the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/stack installs Debian's prometheus package)")
    assert RULES
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULES)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tidings.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    source = "\n".join(path.read_text() for path in (ROOT / "src" / "tidings").rglob("*.py"))
    used = {name for expr in exprs for name in re.findall(r"\b(tidings_[a-z_]+)", expr)}
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert f'"{base}"' in source, f"the dashboard queries {name}, which no code exports"
