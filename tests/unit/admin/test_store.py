"""The back office's tables on SQLite (the embedded store)."""

from __future__ import annotations

from tests.contracts.admin_store import AdminStoreContract


class TestAdminStoreOnSQLite(AdminStoreContract):
    pass
