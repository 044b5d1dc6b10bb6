"""Two people chat in the browser client the bff serves at ``/``, each in their own browser context, against a
real ``tidings dev``: direct and group conversations, live delivery in order, unread badges, read marks, typing,
presence, recall, paging back through history, and catching up after the network drops."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.person import PASSWORD, PHONE, Person, signed_up, unique

pytestmark = pytest.mark.browser


def test_page_is_served_with_a_strict_content_security_policy(base_url: str) -> None:
    page = httpx.get(f"{base_url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    script = httpx.get(f"{base_url}/web/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == policy
    missing = httpx.get(f"{base_url}/web/missing.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["reason"] == "NOT_FOUND"


def test_direct_chat_live_in_order_with_unread_badge_read_mark_typing_presence_and_recall(
    alice: Person, bob: Person, screenshots: Path
) -> None:
    alice.start_direct(bob)
    alice.say("Hi Bob!")
    alice.say("Are you there?")
    alice.expect_texts(["Hi Bob!", "Are you there?"])

    # Bob has not opened the conversation: the list shows it with the last message and two unread.
    item = bob.conversation(alice.username)
    expect(item.locator(".preview")).to_have_text("Are you there?")
    expect(item.locator(".badge")).to_have_attribute("data-unread", "2")
    expect(bob.conversation(alice.username).locator(".avatar.online")).to_have_count(1)
    bob.page.screenshot(path=screenshots / "conversation-list.png")

    bob.open_conversation(alice.username)
    bob.expect_texts(["Hi Bob!", "Are you there?"])
    expect(item.locator(".badge")).to_have_count(0)
    expect(bob.composer).to_be_focused()
    # Alice sees that Bob read them, and that he is online.
    expect(alice.page.locator("#messages .status")).to_have_text(["Seen"])
    expect(alice.page.locator("#thread-sub")).to_have_text("online")

    bob.composer.press_sequentially("Yes")
    expect(alice.page.locator("#thread-sub")).to_have_text(f"{bob.username} is typing…")
    bob.composer.press("Enter")
    alice.expect_texts(["Hi Bob!", "Are you there?", "Yes"])
    bob.expect_texts(["Hi Bob!", "Are you there?", "Yes"])
    expect(alice.page.locator("#thread-sub")).to_have_text("online")
    # Shift+Enter is a new line, Enter sends.
    alice.composer.fill("Great.")
    alice.composer.press("Shift+Enter")
    alice.composer.press_sequentially("Lunch at noon?")
    alice.composer.press("Enter")
    bob.expect_texts(["Hi Bob!", "Are you there?", "Yes", "Great.\nLunch at noon?"])
    bob.composer.press_sequentially("Sure")
    expect(alice.page.locator("#thread-sub")).to_have_text(f"{bob.username} is typing…")
    alice.page.screenshot(path=screenshots / "chat.png")
    bob.composer.fill("")

    alice.say("Oops, wrong chat")
    bob.expect_texts(["Hi Bob!", "Are you there?", "Yes", "Great.\nLunch at noon?", "Oops, wrong chat"])
    alice.messages.last.get_by_role("button", name="Recall this message").click()
    expect(alice.messages.last.locator(".text")).to_have_text("You recalled this message")
    expect(bob.messages.last.locator(".text")).to_have_text("This message was recalled")
    expect(bob.conversation(alice.username).locator(".preview")).to_have_text("Message recalled")
    expect(alice.composer).to_be_focused()
    bob.page.screenshot(path=screenshots / "recall.png")


def test_group_chat_both_see_every_message_in_the_same_order(alice: Person, bob: Person, screenshots: Path) -> None:
    alice.create_group("Weekend plans", bob)
    alice.say("Hiking on Saturday?")
    item = bob.conversation("Weekend plans")
    expect(item.locator(".badge")).to_have_attribute("data-unread", "1")
    expect(item.locator(".preview")).to_have_text(f"{alice.username}: Hiking on Saturday?")
    bob.open_conversation("Weekend plans")
    expect(bob.page.locator("#thread-sub")).to_have_text("2 members, 2 online")
    for turn in range(3):
        bob.say(f"bob {turn}")
        alice.say(f"alice {turn}")
    expected = ["Hiking on Saturday?"] + [text for turn in range(3) for text in (f"bob {turn}", f"alice {turn}")]
    # Sends race each other; both see the same order, the one the server gave (seq), each message once.
    bob.messages.nth(6).wait_for()
    alice.messages.nth(6).wait_for()
    expect(bob.messages).to_have_count(7)
    expect(alice.messages).to_have_count(7)
    seqs = [int(seq) for seq in bob.messages.evaluate_all("items => items.map(item => item.dataset.seq)")]
    assert seqs == sorted(seqs)
    assert bob.texts() == alice.texts()
    assert sorted(bob.texts()) == sorted(expected)
    # Group messages name their senders.
    expect(bob.messages.first.locator(".who")).to_have_text(alice.username)
    expect(alice.conversation("Weekend plans").locator(".badge")).to_have_count(0)
    bob.page.screenshot(path=screenshots / "group.png")


def test_after_the_network_drops_the_chat_reconnects_and_catches_up(alice: Person, bob: Person) -> None:
    alice.start_direct(bob)
    alice.say("before the drop")
    bob.open_conversation(alice.username)
    bob.expect_texts(["before the drop"])

    bob.cut_network()
    expect(bob.page.get_by_role("status")).not_to_have_text("Connected")
    missed = [f"missed {n}" for n in range(1, 4)]
    for text in missed:
        alice.say(text)
    alice.expect_texts(["before the drop", *missed])
    # While offline a send fails visibly and keeps the text to retry.
    bob.say("from the tunnel")
    failed = bob.page.locator("#messages li.failed")
    expect(failed).to_contain_text("Not sent: Cannot reach the server")

    bob.restore_network()
    bob.expect_connected()
    bob.expect_texts(["before the drop", *missed])
    failed.get_by_role("button", name="Retry").click()
    expect(failed).to_have_count(0)
    bob.expect_texts(["before the drop", *missed, "from the tunnel"])
    alice.expect_texts(["before the drop", *missed, "from the tunnel"])
    # Live delivery works again on the new connection.
    alice.say("welcome back")
    bob.expect_texts(["before the drop", *missed, "from the tunnel", "welcome back"])


def test_scrolling_up_loads_older_pages(browser: Browser, base_url: str, bob: Person) -> None:
    sender = unique("carol")
    with httpx.Client(base_url=base_url) as api:
        session = api.post("/v1/auth/register", json={"username": sender, "password": PASSWORD}).json()
        auth = {"authorization": f"Bearer {session['access_token']}"}
        peer = api.get("/v1/users", params={"query": bob.username}, headers=auth).json()["users"][0]["id"]
        conversation = api.post("/v1/conversations", json={"kind": "direct", "peer_id": peer}, headers=auth).json()
        for n in range(1, 121):
            # More than the send limit's burst: paced as a client does, by the Retry-After of a 429 (same id).
            while (
                sent := api.post(
                    f"/v1/conversations/{conversation['id']}/messages",
                    json={"client_msg_id": f"history-{n}", "text": f"line {n}"},
                    headers=auth,
                )
            ).status_code == 429:
                time.sleep(float(sent.headers["retry-after"]))
            assert sent.status_code == 201, sent.text
    # A fresh load holds nothing yet (the messages above also reached Bob live): history comes by pages.
    bob.page.reload()
    bob.expect_connected()
    item = bob.conversation(sender)
    expect(item.locator(".badge")).to_have_attribute("data-unread", "120")
    bob.open_conversation(sender)
    expect(bob.messages.last.locator(".text")).to_have_text("line 120")
    assert bob.messages.count() < 120  # the newest page only
    for _ in range(10):  # 120 messages are three pages; more scrolling than that means paging is stuck
        if bob.page.locator("#older").text_content() == "This is the beginning of the conversation.":
            break
        bob.page.locator("#scroller").evaluate("scroller => scroller.scrollTo(0, 0)")
        expect(bob.page.locator("#older")).not_to_have_text("Loading older messages…")
    expect(bob.messages).to_have_count(120)
    assert bob.texts() == [f"line {n}" for n in range(1, 121)]
    expect(item.locator(".badge")).to_have_count(0)


def test_phone_width_shows_the_list_or_the_chat(
    browser: Browser, base_url: str, alice: Person, screenshots: Path
) -> None:
    with signed_up(browser, base_url, "dana", viewport=PHONE) as phone:
        alice.start_direct(phone)
        alice.say("Hello on the small screen")
        conversations = phone.page.get_by_role("complementary", name="Conversations")
        expect(conversations).to_be_visible()
        phone.page.screenshot(path=screenshots / "phone-list.png")
        phone.open_conversation(alice.username)
        expect(conversations).to_be_hidden()
        phone.expect_texts(["Hello on the small screen"])
        phone.say("Replying from my phone")
        alice.expect_texts(["Hello on the small screen", "Replying from my phone"])
        phone.page.screenshot(path=screenshots / "phone-chat.png")
        phone.page.get_by_role("button", name="Back to conversations").click()
        expect(conversations).to_be_visible()
        expect(phone.conversation(alice.username).get_by_role("button")).to_be_focused()
        # The keyboard way: Enter opens the focused conversation, Escape goes back to the list.
        phone.page.keyboard.press("Enter")
        expect(phone.composer).to_be_focused()
        phone.page.keyboard.press("Escape")
        expect(conversations).to_be_visible()
