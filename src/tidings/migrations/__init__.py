"""The deployment's schema: each owner's branch of Alembic migrations, applied by one environment (``env.py``).

Each owner keeps its tables, its ``MetaData`` and its revisions beside its code: the framework's worker leases
(``pkg/idgen/migrations``), account's (``service/account/migrations``), chat's (``service/chat/migrations``), the
task module's (``task/migrations``) and the back office's (``admin/migrations``). Each branch starts from the base,
so a service's schema could move to a database of its own. ``upgrade`` brings every branch to its head;
``upgrade(url, "chat@head")`` one of them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

_TIDINGS = Path(__file__).resolve().parent.parent
ENVIRONMENT = Path(__file__).resolve().parent
BRANCHES = {
    "framework": _TIDINGS / "pkg" / "idgen" / "migrations",
    "account": _TIDINGS / "service" / "account" / "migrations",
    "chat": _TIDINGS / "service" / "chat" / "migrations",
    "task": _TIDINGS / "task" / "migrations",
    "admin": _TIDINGS / "admin" / "migrations",
}


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ENVIRONMENT))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(path) for path in BRANCHES.values()))
    # ConfigParser interpolation would read a percent-encoded password as a placeholder.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision``. Alembic's env runs its own event loop, so it gets a thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)
