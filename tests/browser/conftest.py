"""Browser fixtures: one ``tidings dev`` (what ``make run`` starts) on free ports with its own data folder, and
headless Debian Chromium driven by Playwright (``scripts/browser`` installs it; no browser download).

``TIDINGS_CHROMIUM`` points at another Chromium binary. Screenshots go to ``.screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

from tests.browser.person import Person, signed_up
from tests.e2e.fleet import ROOT, free_port, port_env

CHROMIUM = os.environ.get("TIDINGS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".screenshots"
MODULES = ("bff", "account", "chat", "job", "task", "admin")
GRPC_MODULES = ("bff", "account", "chat")


@pytest.fixture(scope="package")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tidings dev`` on free ports, run from an empty folder so its SQLite files and event log start empty."""
    workdir = tmp_path_factory.mktemp("web")
    env = {**os.environ, "TIDINGS_LOG__LEVEL": "WARNING"}
    ports = {}
    for module in MODULES:
        ports[module] = free_port()
        env.update(port_env(module, ports[module], free_port() if module in GRPC_MODULES else None))
    log = (workdir / "dev.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tidings", "dev", "--config", str(ROOT / "configs" / "dev.yaml")],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        for module in ("account", "chat", "job", "bff"):
            _wait_ready(process, ports[module], workdir / "dev.log")
        yield f"http://127.0.0.1:{ports['bff']}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"tidings dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"tidings dev not ready on {port} after {timeout_s}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run ./scripts/browser (or set TIDINGS_CHROMIUM)")
    # Live updates can take a moment on a loaded machine; waiting longer never makes a wrong page pass.
    expect.set_options(timeout=15_000)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def alice(browser: Browser, base_url: str) -> Iterator[Person]:
    with signed_up(browser, base_url, "alice") as person:
        yield person


@pytest.fixture
def bob(browser: Browser, base_url: str) -> Iterator[Person]:
    with signed_up(browser, base_url, "bob") as person:
        yield person
