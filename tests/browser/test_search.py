"""The search box of the browser client on ``tidings dev`` (SQLite FTS5 fed by the index job): messages found
with their matches marked (Chinese inside longer text too), markup in a message or a name shown as typed, a page
at a time, in all of one's conversations or the open one; people found by the start of a name; a result opens
its conversation; bad input explained."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.person import Person

pytestmark = pytest.mark.browser

MARKUP = '<b>harbour</b> <img src=x onerror="alert(1)"> &amp; lights'


def until_indexed(base_url: str, person: Person, path: str, query: str, count: int, timeout_s: float = 30) -> None:
    """Wait until the API's search (``path``) finds ``count`` results for ``person``: the index job follows the
    event log within seconds, and a person searching before that would rightly find nothing yet."""
    headers = {"authorization": f"Bearer {person.access_token()}"}
    key = "messages" if path == "/v1/search/messages" else "users"
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{base_url}{path}", params={"query": query}, headers=headers)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()[key]
        if len(found) >= count:
            return
        assert time.monotonic() < deadline, f"{query!r} found {len(found)} of {count} after {timeout_s}s"
        time.sleep(0.2)


def test_messages_are_found_marked_and_open_their_conversation(
    base_url: str, alice: Person, bob: Person, screenshots: Path
) -> None:
    alice.start_direct(bob)
    texts = ["我们明天说你好世界吧 see you at the harbour", MARKUP, "nothing to see here"]
    for text in texts:
        alice.say(text)
    alice.create_group("Harbour crew", bob)
    alice.say("harbour meeting at noon")
    alice.expect_texts(["harbour meeting at noon"])
    until_indexed(base_url, bob, "/v1/search/messages", "harbour", 3)

    # Chinese inside a longer sentence, its match marked; the text around it is the message's, as typed.
    bob.search("你好世界")
    expect(bob.found).to_have_count(1)
    expect(bob.found.locator(".text")).to_have_text(texts[0])
    expect(bob.found.locator(".text mark")).to_have_text(["你好世界"])
    expect(bob.found.locator(".who")).to_have_text(alice.username)
    expect(bob.found.locator(".where")).to_have_text(alice.username)

    # Newest first, from every conversation of Bob's; markup in a message is text, and only the word is marked.
    bob.search("harbour")
    expect(bob.found).to_have_count(3)
    expect(bob.found.locator(".text")).to_have_text(["harbour meeting at noon", MARKUP, texts[0]])
    expect(bob.found.nth(1).locator("mark")).to_have_text(["harbour"])
    assert bob.page.locator("#found img, #found b, #found script").count() == 0
    expect(bob.found.first.locator(".where")).to_have_text("Harbour crew")
    bob.page.screenshot(path=screenshots / "search.png")

    # A result opens its conversation, the message found marked there.
    bob.found.first.get_by_role("button").click()
    expect(bob.page.locator("#thread-title")).to_have_text("Harbour crew")
    expect(bob.page.locator("#messages li.target .text")).to_have_text("harbour meeting at noon")

    # Within the open conversation only: people are not looked for there.
    scope = bob.page.get_by_label("Only in “Harbour crew”")
    scope.check()
    bob.search("harbour")
    expect(bob.page.locator("#search-heading")).to_have_text("Results in “Harbour crew”")
    expect(bob.found.locator(".text")).to_have_text(["harbour meeting at noon"])
    expect(bob.page.locator("#people-results")).to_be_hidden()
    scope.uncheck()

    # An older message in another conversation.
    bob.search("你好世界")
    bob.found.first.get_by_role("button").click()
    expect(bob.page.locator("#thread-title")).to_have_text(alice.username)
    expect(bob.page.locator("#messages li.target .text")).to_have_text(texts[0])
    expect(bob.page.locator("#messages li.target")).to_be_in_viewport()
    bob.page.screenshot(path=screenshots / "search-result-opened.png")
    # Closing the search brings the conversation list back.
    bob.page.get_by_role("button", name="Close search").click()
    expect(bob.found).to_have_count(0)
    expect(bob.conversation("Harbour crew")).to_be_visible()
    expect(bob.search_box).to_be_focused()


def test_results_come_a_page_at_a_time(base_url: str, alice: Person, bob: Person) -> None:
    alice.start_direct(bob)
    conversation = alice.page.locator("#conversations li").first.get_attribute("data-conversation-id")
    headers = {"authorization": f"Bearer {alice.access_token()}"}
    for n in range(1, 13):
        sent = httpx.post(
            f"{base_url}/v1/conversations/{conversation}/messages",
            json={"client_msg_id": f"tide-{n}", "text": f"low tide number {n}"},
            headers=headers,
        )
        assert sent.status_code == 201, sent.text
    until_indexed(base_url, bob, "/v1/search/messages", "tide", 12)

    bob.search("tide")
    expect(bob.found).to_have_count(10)
    more = bob.page.get_by_role("button", name="More results")
    more.click()
    expect(bob.found).to_have_count(12)
    expect(more).to_be_hidden()
    expect(bob.found.locator(".text")).to_have_text([f"low tide number {n}" for n in range(12, 0, -1)])
    # The first result of the new page has the focus, so the keyboard goes on from there.
    expect(bob.found.nth(10).get_by_role("button")).to_be_focused()


def test_people_are_found_by_the_start_of_a_name(base_url: str, alice: Person, bob: Person, screenshots: Path) -> None:
    # A display name with markup and Chinese in it: shown as typed, found by the start of any of its words.
    name = f"<i>Ada</i> 张三丰{alice.username[-8:]}"
    renamed = httpx.patch(
        f"{base_url}/v1/me", json={"display_name": name}, headers={"authorization": f"Bearer {alice.access_token()}"}
    )
    assert renamed.status_code == 200, renamed.text
    prefix = alice.username[:-3]
    until_indexed(base_url, bob, "/v1/users", prefix, 1)
    until_indexed(base_url, bob, "/v1/users", f"张三丰{alice.username[-8:-4]}", 1)

    bob.search(prefix)
    person = bob.people_found.filter(has=bob.page.locator(".preview", has_text=f"@{alice.username}"))
    expect(person.locator(".title")).to_have_text(name)
    assert bob.page.locator("#people i").count() == 0
    bob.page.screenshot(path=screenshots / "search-people.png")
    bob.search(f"张三丰{alice.username[-8:-4]}")
    expect(person.locator(".title")).to_have_text(name)
    # Choosing a person opens the direct conversation with them.
    person.get_by_role("button").click()
    expect(bob.page.locator("#thread-title")).to_have_text(name)
    bob.say("found you")
    expect(alice.conversation(bob.username).locator(".preview")).to_have_text("found you")


def test_bad_searches_are_explained(alice: Person) -> None:
    error = alice.page.locator("#search-error")
    alice.search("   ")
    expect(error).to_have_text("Type the words to look for.")
    expect(alice.search_box).to_be_focused()
    # Too long: the server's answer names the field and the limit, and the box is marked.
    alice.search("x" * 257)
    expect(error).to_contain_text("Something in the request is not valid. (query")
    expect(error).to_contain_text("256")
    expect(alice.search_box).to_have_attribute("aria-invalid", "true")
    alice.search("anything at all")
    expect(error).to_have_text("")
    expect(alice.search_box).to_have_attribute("aria-invalid", "false")
    expect(alice.page.locator("#found li.empty")).to_have_text("No messages found.")
