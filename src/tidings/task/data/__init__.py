"""Adapters of the task's ports: account's published store, the system clock. Each turns its driver's failures
into ``biz.errors.Unavailable``."""
