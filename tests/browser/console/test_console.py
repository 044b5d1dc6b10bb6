"""The console in the browser on the real middleware: a moderator finds a message by its text and removes it, and
the recipient's open chat shows it removed with the reason; a viewer cannot ban; a ban closes the banned person's
open chat tab with a clear message. Every action is in the audit log once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.console.conftest import Operator
from tests.browser.person import Person

pytestmark = pytest.mark.browser

OpenConsole = Callable[[str], Operator]


def search_until_found(console: Operator, query: str, timeout_s: float = 30) -> None:
    """Search until the hit is there: the index job follows the event log within seconds."""
    page = console.page
    console.tab("Messages")
    deadline = time.monotonic() + timeout_s
    while True:
        page.get_by_placeholder("Words to find in every conversation").fill(query)
        page.locator("#message-search").get_by_role("button", name="Search").click()
        try:
            expect(page.locator("#hits li.hit")).to_have_count(1, timeout=1_000)
            return
        except AssertionError:
            assert time.monotonic() < deadline, f"{query!r} not found in {timeout_s}s"


def open_user(console: Operator, username: str) -> None:
    page = console.page
    console.tab("Users")
    page.get_by_placeholder("User id, username or name").fill(username)
    page.locator("#user-search").get_by_role("button", name="Find").click()
    page.locator("#user-list").get_by_role("button", name=username).click()
    expect(page.locator("#user-detail h3")).to_contain_text(f"@{username}")


def test_a_moderator_removes_a_message_and_the_open_chat_shows_it_removed(
    alice: Person, bob: Person, operator: OpenConsole, screenshots: Path
) -> None:
    alice.start_direct(bob)
    alice.say("hello bob")
    alice.say("buy cheap pills at pills dot example")
    bob.open_conversation(alice.username)
    bob.expect_texts(["hello bob", "buy cheap pills at pills dot example"])

    mod = operator("mod")
    search_until_found(mod, "pills")
    hit = mod.page.locator("#hits li.hit")
    expect(hit.locator("mark")).to_have_text(["pills", "pills"])
    hit.get_by_placeholder("Reason (required)").fill("spam links")
    hit.get_by_role("button", name="Remove message").click()
    mod.status().to_have_text("Message #2 removed.")

    expect(bob.page.get_by_text("Removed by a moderator: spam links")).to_be_visible()
    expect(alice.page.get_by_text("Removed by a moderator: spam links")).to_be_visible()
    bob.page.screenshot(path=screenshots / "console-removed-in-chat.png")

    mod.tab("Audit log")
    row = mod.page.locator("#audit-table tbody tr[data-action='remove_message']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("spam links")
    expect(row.locator("td").nth(5)).to_have_text("ok")
    mod.page.screenshot(path=screenshots / "console-audit.png")


def test_a_viewer_cannot_ban(alice: Person, operator: OpenConsole) -> None:
    viewer = operator("vic")
    open_user(viewer, alice.username)
    viewer.page.locator("#user-detail").get_by_placeholder("Reason (required)").first.fill("looks suspicious")
    viewer.page.get_by_role("button", name="Ban", exact=True).click()
    viewer.status().to_have_text("ROLE_REQUIRED: this needs the moderator role; you are a viewer")
    open_user(viewer, alice.username)
    expect(viewer.page.locator("#user-detail .meta").first).to_contain_text("not banned")
    alice.expect_connected()

    # What a viewer may do: the stats, drawn by the server, and the consumers' lag read from the brokers.
    viewer.tab("Stats")
    for chart in ("#chart-messages", "#chart-active"):
        expect(viewer.page.locator(chart)).to_have_js_property("complete", True)
        assert viewer.page.locator(chart).evaluate("image => image.naturalWidth") > 0
    expect(viewer.page.locator("#lag-table tbody tr").filter(has_text="persist")).to_have_count(1)


def test_a_ban_closes_the_open_chat_tab_with_a_clear_message(
    alice: Person, bob: Person, operator: OpenConsole, screenshots: Path
) -> None:
    alice.start_direct(bob)
    alice.say("see you")
    mod = operator("mod")
    open_user(mod, alice.username)
    mod.page.locator("#user-detail").get_by_placeholder("Reason (required)").first.fill("harassment")
    mod.page.get_by_role("button", name="Ban", exact=True).click()
    mod.status().to_have_text(f"{alice.username} banned.")

    expect(alice.page.get_by_role("alert")).to_have_text("Your account was suspended by an operator.")
    expect(alice.page.locator("#auth")).to_be_visible()
    alice.page.screenshot(path=screenshots / "console-banned-tab.png")
    bob.expect_connected()

    mod.tab("Audit log")
    row = mod.page.locator("#audit-table tbody tr[data-action='ban_user']")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(5)).to_have_text("ok")
