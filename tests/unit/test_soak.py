"""The soak's verdict: the end of the run against its start after the warm-up, each figure against its bound; its
plot escapes what it is given; its people's tokens outlast it."""

from __future__ import annotations

import os
from pathlib import Path
from unittest.mock import patch

from tidings import conf
from tidings.bench import soak
from tidings.bench.soak import Bounds, Sample, growth
from tidings.pkg.charts import lines


def samples(rss_mib: list[float], fds: list[int], tasks: list[float]) -> list[Sample]:
    return [
        Sample(10.0 * n, {"bff": int(r * 1024)}, {"bff": f}, {"bff": t}, 0.0, 1.0, 100 * n, 10 * n)
        for n, (r, f, t) in enumerate(zip(rss_mib, fds, tasks, strict=True))
    ]


def verdicts(found: list[Sample]) -> dict[str, bool]:
    return {g.figure: g.within for g in growth(found, Bounds(rss_pct=20, fds=50, tasks=200, lag=2000))}


def test_a_steady_run_is_within_its_bounds_even_with_a_large_warm_up() -> None:
    run = samples([50, 90, 100, 101, 99, 100, 102, 101], [10, 40, 60, 61, 60, 62, 61, 60], [5, 300, 320] + [330] * 5)
    assert all(verdicts(run).values())


def test_memory_descriptors_and_tasks_that_keep_growing_fail() -> None:
    run = samples(
        [100, 100, 100, 110, 120, 130, 140, 150],
        [60, 60, 60, 80, 100, 120, 140, 160],
        [10] * 3 + [100, 200, 300, 400, 500],
    )
    found = verdicts(run)
    assert found["bff RSS (MiB)"] is False
    assert found["bff open descriptors"] is False
    assert found["bff event-loop tasks"] is False
    assert found["consumer lag (records)"] is True


def test_the_plot_escapes_its_labels() -> None:
    svg = lines("RSS <MiB>", [0.0, 1.0], {"<bff>": [1.0, 2.0], "job": [2.0, 2.0]})
    assert "<bff>" not in svg
    assert "&lt;bff&gt;" in svg
    assert svg.count("<polyline") == 2


def test_the_access_tokens_outlast_a_run_longer_than_their_configured_lifetime() -> None:
    ttl = conf.load(Path("configs/stack.yaml")).auth.access_ttl_s
    minutes = 2 * ttl / 60
    with patch.dict(os.environ, soak.tokens_outlast(minutes)):
        assert conf.load(Path("configs/stack.yaml")).auth.access_ttl_s > minutes * 60
