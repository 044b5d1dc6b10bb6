"""API fuzzing fixtures: one ``tidings dev`` on free ports, a signed-in chat user for the bff's API and an admin
operator's bearer session for the back office's, and each API's OpenAPI document loaded by schemathesis with
the checks of the run; the examples and the seed each operation gets."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.e2e.client import PASSWORD
from tests.e2e.fleet import Dev, dev_on_free_ports
from tests.e2e.operators import PASSWORD as OPERATOR_PASSWORD
from tests.e2e.operators import create_operator_command
from tests.fuzz import checks

# Examples per operation, input kind (valid, invalid) and ids (random, existing): both APIs in about a minute and
# a half on two cores.
MAX_EXAMPLES = 60
# The same run every time unless a seed is given to explore more (TIDINGS_FUZZ_SEED=<int>).
SEED = int(os.environ.get("TIDINGS_FUZZ_SEED", "20261206"))
OPERATOR = "fuzz-admin"
# Path parameters that name something that exists, by name.
Known = dict[str, str]


@pytest.fixture(scope="package")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    # The fuzzer registers and logs in over and over: cheap password hashes keep that from being the whole run.
    cheap_hashes = {"TIDINGS_AUTH__PASSWORD_TIME_COST": "1", "TIDINGS_AUTH__PASSWORD_MEMORY_KIB": "8192"}
    with dev_on_free_ports(tmp_path_factory.mktemp("fuzz"), cheap_hashes) as dev:
        yield dev


# What every answer is checked for (``tests.fuzz.checks``), and how long one may take on a busy machine.
CONFIG = {
    "request-timeout": 30,
    "checks": {"enabled": False, **{name: {"enabled": True} for name in checks.NAMES}},
}


def register(dev: Dev) -> dict[str, Any]:
    username = f"fuzz_{uuid.uuid4().hex[:8]}"
    answer = httpx.post(
        f"{dev.url('bff')}/v1/auth/register", json={"username": username, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    session: dict[str, Any] = answer.json()
    return session


@pytest.fixture(scope="package")
def user(dev: Dev) -> dict[str, Any]:
    return register(dev)


@pytest.fixture(scope="package")
def user_token(user: dict[str, Any]) -> str:
    token: str = user["access_token"]
    return token


@pytest.fixture(scope="package")
def known(dev: Dev, user: dict[str, Any]) -> Known:
    """Ids that exist: a group of the user's with one message in it, and its other member."""
    peer = register(dev)["user"]["id"]
    with httpx.Client(base_url=dev.url("bff"), headers={"authorization": f"Bearer {user['access_token']}"}) as bff:
        group = bff.post("/v1/conversations", json={"kind": "group", "title": "fuzz", "member_ids": [peer]})
        assert group.status_code == 201, group.text
        conversation_id = group.json()["id"]
        sent = bff.post(f"/v1/conversations/{conversation_id}/messages", json={"client_msg_id": "c-1", "text": "hi"})
        assert sent.status_code == 201, sent.text
    return {"conversation_id": conversation_id, "user_id": peer}


@pytest.fixture(scope="package")
def operator_token(dev: Dev) -> str:
    created = subprocess.run(
        create_operator_command(OPERATOR, "admin", dev.config),
        input=OPERATOR_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=dev.workdir,
        env=dev.env,
        check=False,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    answer = httpx.post(
        f"{dev.url('admin')}/admin/v1/auth/login",
        json={"username": OPERATOR, "password": OPERATOR_PASSWORD, "bearer": True},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.fixture(scope="package")
def bff_schema(dev: Dev) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{dev.url('bff')}/openapi.json", config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture(scope="package")
def admin_schema(dev: Dev) -> OpenApiSchema:
    config = schemathesis.Config.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{dev.url('admin')}/openapi.json", config=config)
