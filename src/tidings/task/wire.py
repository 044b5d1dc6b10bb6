"""Composition root of the task module."""

from __future__ import annotations

from tidings.pkg import module
from tidings.pkg.app import Module
from tidings.pkg.infra import Infra


async def wire(infra: Infra) -> Module:
    await infra.engine()
    return module.worker("task", infra.settings.modules.task, [infra.database_check()])
