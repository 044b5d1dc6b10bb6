"""A snowflake generator whose worker id is fixed by config or leased, with the lease kept alive."""

from __future__ import annotations

import asyncio
import contextlib

from tidings.pkg import log
from tidings.pkg.idgen.lease import LeaseLost, WorkerLease
from tidings.pkg.idgen.snowflake import Snowflake


class IdGenerator:
    """Hands out ids once started; runs as a lifecycle component so the lease lives exactly as long as we do.

    If the lease is lost (the database was unreachable for longer than the TTL and another process took the
    id), ``next_id`` refuses rather than risk a duplicate id.
    """

    name = "idgen"

    def __init__(self, lease: WorkerLease, *, fixed_worker_id: int | None, renew_every_s: float) -> None:
        self._lease = lease
        self._fixed = fixed_worker_id
        self._renew_every_s = renew_every_s
        self._snowflake: Snowflake | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._log = log.get("idgen")

    @property
    def worker_id(self) -> int:
        return self._require().worker_id

    def next_id(self) -> int:
        return self._require().next_id()

    def _require(self) -> Snowflake:
        if self._snowflake is None:
            raise RuntimeError("id generator is not running (not started, stopped or its lease was lost)")
        return self._snowflake

    async def start(self) -> None:
        if self._fixed is not None:
            self._snowflake = Snowflake(self._fixed)
            return
        worker_id = await self._lease.acquire()
        self._snowflake = Snowflake(worker_id)
        self._renewer = asyncio.create_task(self._renew_forever(worker_id), name="idgen lease renewal")
        self._log.info("worker id leased", worker_id=worker_id)

    async def _renew_forever(self, worker_id: int) -> None:
        while True:
            await asyncio.sleep(self._renew_every_s)
            try:
                await self._lease.renew(worker_id)
            except LeaseLost:
                self._log.error("worker id lease lost; refusing to issue ids", worker_id=worker_id)
                self._snowflake = None
                return
            except Exception:
                # The database may be back before the lease runs out; keep trying.
                self._log.warning("worker id lease renewal failed", worker_id=worker_id, exc_info=True)

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
            if self._snowflake is not None:
                with contextlib.suppress(Exception):
                    await self._lease.release(self._snowflake.worker_id)
        self._snowflake = None
