"""Hit / miss / load / error counters of every cache of one module, labelled by cache name."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter


def _counter(name: str, documentation: str, labels: list[str], *, registry: CollectorRegistry) -> Counter:
    """The counter ``name`` of ``registry``: created once, found again when a module is wired twice in one
    process (tests wire a module per test on the default registry)."""
    existing: Any = getattr(registry, "_names_to_collectors", {}).get(name)
    if isinstance(existing, Counter):
        return existing
    return Counter(name, documentation, labels, registry=registry)


class CacheMetrics:
    """One set per module and registry (``tidings dev`` runs several modules on one registry)."""

    def __init__(self, registry: CollectorRegistry, module: str) -> None:
        prefix = f"tidings_{module}_cache"
        self.requests = _counter(
            f"{prefix}_requests",
            "Keys asked of a cache, by result (hit or miss).",
            ["cache", "result"],
            registry=registry,
        )
        self.loads = _counter(
            f"{prefix}_loads", "Loader calls after misses (one per singleflight).", ["cache"], registry=registry
        )
        self.loaded_keys = _counter(f"{prefix}_loaded_keys", "Keys asked of loaders.", ["cache"], registry=registry)
        self.errors = _counter(
            f"{prefix}_errors",
            "Store calls that failed (the request went on without the cache), by operation.",
            ["cache", "op"],
            registry=registry,
        )
        self.corrupt = _counter(
            f"{prefix}_corrupt", "Values of another schema or damaged, read as misses.", ["cache"], registry=registry
        )
        self.late_fills = _counter(
            f"{prefix}_late_fills",
            "Loaded values not stored because the load outlasted the fill deadline (they could be stale).",
            ["cache"],
            registry=registry,
        )
