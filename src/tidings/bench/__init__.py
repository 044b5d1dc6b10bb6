"""``tidings bench``: measurements that write their own results to ``docs/BENCHMARKS.md`` (never test thresholds)."""

from __future__ import annotations

import typer

from tidings.bench import cache, fanout, search, send

bench_app = typer.Typer(help="Benchmarks: run a workload, append the measured numbers to docs/BENCHMARKS.md.")
bench_app.command("fanout")(fanout.command)
bench_app.command("cache")(cache.command)
bench_app.command("send")(send.command)
bench_app.command("search")(search.command)
