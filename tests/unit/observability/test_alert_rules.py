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


def test_a_task_that_has_not_succeeded_for_two_periods_alerts_and_one_on_time_does_not(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/stack installs Debian's prometheus package)")
    # Two hourly tasks seen for 3 hours: one last succeeded at 0 s (due again at 3600 s, overdue after 7200 s), the
    # other succeeds every hour.
    cases = {
        "rule_files": [str(path) for path in RULES],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'tidings_task_period_seconds{task="stale"}', "values": "3600+0x180"},
                    {"series": 'tidings_task_last_success_timestamp_seconds{task="stale"}', "values": "0+0x180"},
                    {"series": 'tidings_task_period_seconds{task="fine"}', "values": "3600+0x180"},
                    {
                        "series": 'tidings_task_last_success_timestamp_seconds{task="fine"}',
                        "values": "0+0x59 3600+0x59 7200+0x60",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "100m", "alertname": "TidingsTaskNotSucceeding", "exp_alerts": []},
                    {
                        "eval_time": "150m",
                        "alertname": "TidingsTaskNotSucceeding",
                        "exp_alerts": [
                            {
                                "exp_labels": {"task": "stale", "severity": "warning"},
                                "exp_annotations": {
                                    "summary": "Task stale has not succeeded for two of its periods",
                                    "description": "Check the task module's logs and "
                                    '`tidings_task_runs_total{task="stale"}` by outcome.',
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    spec = tmp_path / "tasks_test.yml"
    spec.write_text(json.dumps(cases))  # JSON is YAML
    result = subprocess.run(
        [promtool, "test", "rules", str(spec)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
