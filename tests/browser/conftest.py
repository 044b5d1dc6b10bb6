"""Browser fixtures: one ``tidings dev`` (what ``make run`` starts) on free ports with its own data folder, and
headless Debian Chromium driven by Playwright (``scripts/browser`` installs it; no browser download).

``TIDINGS_CHROMIUM`` points at another Chromium binary. Screenshots go to ``.screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

from tests.browser.person import Person, signed_up
from tests.e2e.fleet import ROOT, dev_on_free_ports

CHROMIUM = os.environ.get("TIDINGS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".screenshots"


@pytest.fixture(scope="package")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tidings dev`` on free ports, run from an empty folder so its SQLite files and event log start empty."""
    with dev_on_free_ports(tmp_path_factory.mktemp("web")) as dev:
        yield dev.url("bff")


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
