"""What every benchmark writes beside its numbers: the machine, the commit, and the append to BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def machine() -> str:
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {mem_kib / 1024 / 1024:.1f} GiB memory"


def commit() -> str:
    """The short commit, marked when ``src/`` differs from it (the numbers then belong to a working tree)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)  # noqa: S607
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"], check=False).returncode  # noqa: S607
    return out.stdout.strip() + (" (with uncommitted changes in src/)" if dirty else "")


BENCHMARKS_HEADER = "# Benchmarks\n\nWritten by `tidings bench …`; every number below was measured, none typed.\n"


def append(path: Path, section: str, header: str = BENCHMARKS_HEADER) -> None:
    """Append ``section``, re-reading the file first: another benchmark may have written to it meanwhile. A new
    file starts with ``header``."""
    if not path.exists() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header)
    with path.open("a") as out:
        out.write("\n" + section)
