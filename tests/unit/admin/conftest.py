"""The back office's use cases on fakes of the services and SQLite for its own tables."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.unit.admin.fakes import FakeAccounts, FakeAuditLog, FakeChats, FakeDevices, FakePipeline
from tidings.admin.biz.actions import Moderation
from tidings.admin.biz.audit import Audited
from tidings.admin.biz.lookups import Lookups
from tidings.admin.biz.model import Caller, Role
from tidings.admin.biz.operators import OperatorOptions, Operators
from tidings.admin.biz.overview import Overview
from tidings.admin.data.operators import SQLLoginFailures, SQLOperatorRepo, SQLSessionRepo
from tidings.admin.data.totp import PyOTPSecondFactor
from tidings.pkg import log
from tidings.pkg.clock import FakeClock
from tidings.pkg.passwords import Argon2Hasher
from tidings.task.store.stats import SQLStatsReader

PASSWORD = "a-long-enough-password"


@dataclass
class Office:
    operators: Operators
    moderation: Moderation
    lookups: Lookups
    overview: Overview
    audited: Audited
    accounts: FakeAccounts
    chats: FakeChats
    devices: FakeDevices
    audit: FakeAuditLog
    clock: FakeClock

    async def caller(self, role: Role, name: str | None = None) -> Caller:
        username = name or f"{role.value}1"
        await self.operators.create(username, PASSWORD, role)
        signed = await self.operators.login(username, PASSWORD)
        return await self.operators.caller(signed.token, by_cookie=False)


@pytest.fixture
def office(engine: AsyncEngine) -> Office:
    clock = FakeClock()
    ids = itertools.count(1)
    operators = Operators(
        SQLOperatorRepo(engine),
        SQLSessionRepo(engine),
        SQLLoginFailures(engine),
        Argon2Hasher(time_cost=1, memory_kib=8192),
        PyOTPSecondFactor(),
        lambda: next(ids),
        clock,
        OperatorOptions(session_ttl_s=600, max_failures=3, lock_s=60),
    )
    accounts, chats, devices, audit = FakeAccounts(), FakeChats(), FakeDevices(), FakeAuditLog()
    audited = Audited(audit, lambda: next(ids), clock, lambda: "trace-1", log.get("test"))
    return Office(
        operators,
        Moderation(accounts, chats, operators, audited),
        Lookups(accounts, chats, devices),
        Overview(SQLStatsReader(engine), FakePipeline(), clock),
        audited,
        accounts,
        chats,
        devices,
        audit,
        clock,
    )
