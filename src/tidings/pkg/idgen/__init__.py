"""Snowflake ids: 64-bit, unique across processes (one worker id each), sortable by creation time."""

from tidings.pkg.idgen.lease import SQLWorkerLease, WorkerLease
from tidings.pkg.idgen.snowflake import ClockMovedBackwards, Snowflake
from tidings.pkg.idgen.worker import IdGenerator

__all__ = ["ClockMovedBackwards", "IdGenerator", "SQLWorkerLease", "Snowflake", "WorkerLease"]
