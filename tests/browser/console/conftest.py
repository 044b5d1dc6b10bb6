"""The back office's console in the browser, on the real middleware: account, chat, the jobs, the bff and admin as
their own processes on MariaDB, Redis, Kafka and OpenSearch (the stack), with a moderator and a viewer created by
``tidings admin create-operator``. The chat client's people (``alice``, ``bob``) use this stack's bff.

The fleet is driven from a thread of its own: Playwright's synchronous API holds the test thread's event loop.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import drop_search_indices, fresh_database
from tests.e2e.fleet import ROOT, Fleet

T = TypeVar("T")
CONFIG = ROOT / "configs" / "stack.yaml"
OPERATOR_PASSWORD = "operators-long-password"
ADMIN_URL = "http://127.0.0.1:8085"


class LoopThread:
    """An event loop on a thread of its own, for the fleet's subprocesses and clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fleet loop", daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout_s: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class Stack:
    fleet: Fleet
    env: dict[str, str]


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("console")
    loop = LoopThread()
    database: AbstractAsyncContextManager[str] = fresh_database()
    url = loop.run(database.__aenter__())
    # Only the control event closes a banned user's sockets here, not a re-verification of their token.
    env = {"TIDINGS_DATABASE__URL": url, "TIDINGS_REALTIME__REVERIFY_INTERVAL_S": "300"}
    fleet = Fleet(CONFIG, workdir, env=env)
    try:
        for module in ("account", "chat", "job", "bff", "admin"):
            loop.run(fleet.start(module))
        operators_env = {
            **os.environ,
            **env,
            "TIDINGS_BUS__NAMESPACE": fleet.namespace,
            "TIDINGS_SEARCH__NAMESPACE": fleet.namespace,
        }
        for name, role in (("mod", "moderator"), ("vic", "viewer")):
            command = ["admin", "create-operator", "--username", name, "--role", role, "--password-stdin"]
            created = subprocess.run(
                [sys.executable, "-m", "tidings", *command, "--config", str(CONFIG)],
                input=OPERATOR_PASSWORD + "\n",
                capture_output=True,
                text=True,
                cwd=workdir,
                env=operators_env,
                check=False,
            )
            assert created.returncode == 0, created.stderr
        yield Stack(fleet, env)
    finally:
        loop.run(fleet.close())
        loop.run(drop_search_indices(fleet.namespace))
        loop.run(database.__aexit__(None, None, None))
        loop.close()


@pytest.fixture(scope="package")
def base_url(stack: Stack) -> str:
    """The chat client on this stack's bff."""
    return "http://127.0.0.1:8080"


@dataclass
class Operator:
    context: BrowserContext
    page: Page
    errors: list[str]

    def tab(self, name: str) -> None:
        self.page.locator("#tabs").get_by_role("button", name=name).click()

    def status(self) -> Any:
        return expect(self.page.get_by_role("status"))


@pytest.fixture
def operator(browser: Browser, stack: Stack) -> Iterator[Any]:
    """Opens the console and logs in as the operator named, in a browser context of their own."""
    opened: list[Operator] = []

    def log_in(username: str) -> Operator:
        context = browser.new_context(base_url=ADMIN_URL)
        page = context.new_page()
        console = Operator(context, page, [])
        page.on("pageerror", lambda error: console.errors.append(str(error)))
        page.goto("/admin/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#who")).to_contain_text(username)
        expect(page.locator("#login")).to_be_hidden()
        opened.append(console)
        return console

    yield log_in
    for console in opened:
        assert console.errors == [], "the console raised errors"
        console.context.close()
