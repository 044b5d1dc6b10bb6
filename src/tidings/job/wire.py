"""Composition root of the job module: one consumer group per concern."""

from __future__ import annotations

from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.infra import Infra


async def wire(infra: Infra) -> Module:
    await infra.engine()
    return module.worker("job", infra.settings.modules.job, [infra.database_check()])
