"""One person at the browser client: their own browser context (storage, cookies, network), a page, and the
steps a person takes, written with what they see (roles, labels, text), not with the client's internals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser, BrowserContext, Locator, Page, WebSocketRoute, expect

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1100, "height": 720}
PHONE = {"width": 390, "height": 780}


def unique(name: str) -> str:
    """A username no other test of this run has taken (3-32 of ``[A-Za-z0-9_.]``)."""
    return f"{name}_{uuid.uuid4().hex[:8]}"


@dataclass
class Person:
    username: str
    context: BrowserContext
    page: Page
    # Uncaught page errors and dialogs (a script in a message must never open one).
    errors: list[str] = field(default_factory=list)
    # The page's live connections pass through these routes, so a test can cut them as a dropped network would.
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = field(default_factory=list)
    offline: bool = False

    @classmethod
    def open(cls, browser: Browser, base_url: str, name: str, viewport: dict[str, int] | None = None) -> Person:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=base_url)
        page = context.new_page()
        person = cls(unique(name), context, page)
        context.route_web_socket("**/v1/ws*", person._route_socket)
        page.on("pageerror", lambda error: person.errors.append(str(error)))
        page.on("dialog", lambda dialog: person.errors.append(f"dialog opened: {dialog.message}"))
        page.goto("/")
        return person

    def sign_up(self) -> Person:
        page = self.page
        page.get_by_role("button", name="Create an account").click()
        page.get_by_label("Username", exact=True).fill(self.username)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        self.expect_connected()
        return self

    def expect_connected(self) -> None:
        expect(self.page.get_by_role("status")).to_have_text("Connected")

    def new_conversation(self) -> None:
        """Unfold the "New conversation" forms (a click on the summary folds them when they are open)."""
        if self.page.locator("#new-chat").get_attribute("open") is None:
            self.page.get_by_text("New conversation").click()

    def start_direct(self, other: Person) -> None:
        self.new_conversation()
        self.page.get_by_label("Chat with (username)").fill(other.username)
        self.page.get_by_role("button", name="Start").click()
        expect(self.page.locator("#thread-title")).to_have_text(other.username)

    def create_group(self, title: str, *members: Person) -> None:
        self.new_conversation()
        self.page.get_by_label("Group name").fill(title)
        self.page.get_by_label("Members (usernames, separated by commas)").fill(", ".join(m.username for m in members))
        self.page.get_by_role("button", name="Create group").click()
        expect(self.page.locator("#thread-title")).to_have_text(title)

    def conversation(self, title: str) -> Locator:
        return self.page.locator("#conversations li").filter(has=self.page.locator(".title", has_text=title))

    def open_conversation(self, title: str) -> None:
        self.conversation(title).get_by_role("button").click()
        expect(self.page.locator("#thread-title")).to_have_text(title)

    @property
    def composer(self) -> Locator:
        return self.page.get_by_label("Message", exact=True)

    def say(self, text: str) -> None:
        """Type and press Enter, as a person sends."""
        self.composer.fill(text)
        self.composer.press("Enter")

    @property
    def messages(self) -> Locator:
        """Acknowledged or received messages, in the order shown (local echoes excluded)."""
        return self.page.locator("#messages li.message:not(.echo)")

    def texts(self) -> list[str]:
        return self.messages.locator(".text").all_text_contents()

    def expect_texts(self, texts: list[str]) -> None:
        expect(self.messages.locator(".text")).to_have_text(texts)

    @property
    def search_box(self) -> Locator:
        return self.page.get_by_label("Search messages and people")

    def search(self, query: str) -> None:
        """Type in the search box and press Enter, as a person searches."""
        self.search_box.fill(query)
        self.search_box.press("Enter")

    @property
    def found(self) -> Locator:
        """The messages a search found, in the order shown."""
        return self.page.locator("#found li:not(.empty)")

    @property
    def people_found(self) -> Locator:
        return self.page.locator("#people li:not(.empty)")

    def access_token(self) -> str:
        token: str = self.page.evaluate("JSON.parse(localStorage.getItem('tidings.session')).access_token")
        return token

    def _route_socket(self, page_side: WebSocketRoute) -> None:
        if self.offline:
            page_side.close(code=1006, reason="network down")
            return
        self.sockets.append((page_side, page_side.connect_to_server()))

    def cut_network(self) -> None:
        """The network drops: requests fail, the live connection closes and new ones are refused."""
        self.offline = True
        self.context.set_offline(True)
        for page_side, server_side in self.sockets:
            server_side.close()
            page_side.close(code=1006, reason="network down")
        self.sockets.clear()

    def restore_network(self) -> None:
        self.offline = False
        self.context.set_offline(False)

    def close(self) -> None:
        self.context.close()


@contextmanager
def signed_up(browser: Browser, base_url: str, name: str, viewport: dict[str, int] | None = None) -> Iterator[Person]:
    """A new person, signed up and connected; afterwards, their page must not have raised any error."""
    person = Person.open(browser, base_url, name, viewport).sign_up()
    try:
        yield person
        assert person.errors == [], "the page raised errors"
    finally:
        person.close()
