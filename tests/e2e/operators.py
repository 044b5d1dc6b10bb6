"""Operators of the back office for end-to-end tests: created with ``tidings admin create-operator`` in a fleet's
environment, then logged in through the admin API for a bearer token."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from tests.e2e.fleet import Fleet

PASSWORD = "operators-long-password"
ADMIN_URL = "http://127.0.0.1:8085"


def create_operator_command(username: str, role: str, config: Path) -> list[str]:
    """``tidings admin create-operator``, reading ``PASSWORD`` from its standard input."""
    return [
        sys.executable,
        "-m",
        "tidings",
        "admin",
        "create-operator",
        "--username",
        username,
        "--role",
        role,
        "--password-stdin",
        "--config",
        str(config),
    ]


async def create_operator(fleet: Fleet, username: str, role: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *create_operator_command(username, role, fleet.config),
        cwd=fleet.workdir,
        env={**os.environ, "TIDINGS_BUS__NAMESPACE": fleet.namespace, **fleet.env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(f"{PASSWORD}\n".encode())
    assert process.returncode == 0, (out + err).decode()


async def operator_headers(admin: httpx.AsyncClient, username: str) -> dict[str, str]:
    """A bearer session of the operator (no cookie, so no CSRF token needed)."""
    answer = await admin.post("/admin/v1/auth/login", json={"username": username, "password": PASSWORD, "bearer": True})
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['token']}"}
