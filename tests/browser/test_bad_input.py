"""Whatever a person types is shown as text and never run; limits are explained before sending; every failure
the server answers is shown in words, not swallowed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.person import PASSWORD, Person, unique

pytestmark = pytest.mark.browser

MARKUP = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(2)</script>",
    "<b>not bold</b> &amp; not an entity",
    "javascript:alert(3)",
]


def test_markup_emoji_and_right_to_left_text_are_shown_as_typed(alice: Person, bob: Person) -> None:
    alice.start_direct(bob)
    texts = [*MARKUP, "👋🏽 emoji with a skin tone 🇳🇴", "שלום עולם", "مرحبا بالعالم", "  spaced  \n\n  lines  "]
    for text in texts:
        alice.say(text)
    bob.open_conversation(alice.username)
    for person in (alice, bob):
        person.expect_texts(texts)
        assert person.messages.locator(".text").all_text_contents() == texts
        # Nothing typed became an element, and nothing ran (a dialog would be in person.errors).
        assert person.page.locator("#messages img, #messages script, #messages b").count() == 0
        assert person.messages.locator(".text").first.get_attribute("dir") == "auto"
    expect(bob.conversation(alice.username).locator(".preview")).to_have_text(texts[-1].replace("\n", " "))


def test_limits_are_explained_before_sending(alice: Person, bob: Person) -> None:
    alice.start_direct(bob)
    hint = alice.page.locator("#composer-hint")
    send = alice.page.get_by_role("button", name="Send", exact=True)

    alice.composer.fill("a" * 4001)
    expect(hint).to_have_text("Too long: 4,001 of 4,000 characters. Remove 1 to send.")
    expect(send).to_be_disabled()
    expect(alice.composer).to_have_attribute("aria-invalid", "true")
    alice.composer.press("Enter")
    expect(alice.page.locator("#messages li")).to_have_count(0)

    # The limit counts characters (code points) as the server does: 4,000 emoji are 8,000 UTF-16 units.
    alice.composer.fill("😀" * 4000)
    expect(hint).to_have_text("0 characters left")
    expect(send).to_be_enabled()
    alice.composer.press("Enter")
    bob.open_conversation(alice.username)
    bob.expect_texts(["😀" * 4000])

    alice.composer.fill("   \n\t ")
    expect(hint).to_have_text("Only spaces: write something to send.")
    expect(send).to_be_disabled()
    alice.composer.press("Enter")
    expect(alice.page.locator("#messages li.echo")).to_have_count(0)
    alice.expect_texts(["😀" * 4000])
    alice.composer.fill("")
    expect(hint).to_have_text("")


def test_sign_up_and_log_in_failures_are_explained(
    browser: Browser, base_url: str, alice: Person, screenshots: Path
) -> None:
    person = Person.open(browser, base_url, "erin")
    try:
        page = person.page
        error = page.locator("#auth-error")
        page.get_by_role("button", name="Create an account").click()
        page.get_by_label("Username", exact=True).fill("no spaces allowed")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(error).to_have_text("Username may contain only letters, digits, “_” and “.”.")
        page.get_by_label("Username", exact=True).fill(person.username)
        page.get_by_label("Password", exact=True).fill("short")
        page.get_by_role("button", name="Sign up").click()
        expect(error).to_have_text("Password must be at least 8 characters.")
        expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Password", exact=True)).to_be_focused()
        # The server's answers: a taken name, then a wrong password.
        page.get_by_label("Username", exact=True).fill(alice.username)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(error).to_have_text("That username is taken. Pick another one.")
        expect(page.get_by_label("Username", exact=True)).to_have_attribute("aria-invalid", "true")
        page.screenshot(path=screenshots / "sign-up-error.png")
        expect(page.get_by_label("Username", exact=True)).to_be_focused()
        page.get_by_role("button", name="Log in instead").click()
        page.get_by_label("Username", exact=True).fill(alice.username)
        page.get_by_label("Password", exact=True).fill("not the password")
        page.get_by_role("button", name="Log in", exact=True).click()
        expect(error).to_have_text("Wrong username or password.")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in", exact=True).click()
        person.expect_connected()
        assert person.errors == []
    finally:
        person.close()


def test_failures_of_the_server_are_shown(base_url: str, alice: Person, bob: Person) -> None:
    alice.new_conversation()
    nobody = unique("nobody")
    alice.page.get_by_label("Chat with (username)").fill(nobody)
    alice.page.get_by_role("button", name="Start").click()
    expect(alice.page.locator("#direct-error")).to_have_text(f"No user is named “{nobody}”.")

    alice.create_group("Book club", bob)
    bob.open_conversation("Book club")
    # Alice (the owner) removes Bob; his next send is refused by the server and he is told why.
    token = alice.page.evaluate("JSON.parse(localStorage.getItem('tidings.session')).access_token")
    group_id = alice.page.locator("#conversations li").first.get_attribute("data-conversation-id")
    bob_id = bob.page.evaluate("JSON.parse(localStorage.getItem('tidings.session')).user.id")
    removed = httpx.delete(
        f"{base_url}/v1/conversations/{group_id}/members/{bob_id}", headers={"authorization": f"Bearer {token}"}
    )
    assert removed.status_code == 200, removed.text
    bob.say("am I still here?")
    failed = bob.page.locator("#messages li.failed")
    expect(failed.locator(".status")).to_have_text("Not sent: You are not a member of this conversation. Retry")
    expect(failed.locator(".text")).to_have_text("am I still here?")
