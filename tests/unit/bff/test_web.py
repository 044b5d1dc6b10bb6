"""The browser client as the bff serves it: the page and its files from the package, under a strict policy."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from importlib import resources

import httpx
import pytest

from tidings.bff import server
from tidings.pkg.transport import web

WEB = resources.files("tidings.bff") / "web"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = server.http_app([], request_timeout_s=5)
    web.install(app, "tidings.bff")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bff") as client:
        yield client


async def test_the_page_is_served_at_the_root_with_a_policy_that_allows_no_inline_code(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    # No inline script or handler that the policy would have to allow.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert not re.search(r"\son[a-z]+=", page.text)


async def test_every_file_the_page_loads_is_served_with_its_type_and_the_same_policy(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/")).text
    assets = re.findall(r'(?:src|href)="(/web/[^"]+)"', page)
    modules = {
        module
        for file in WEB.iterdir()
        if file.name.endswith(".js")
        for module in re.findall(r"from '\./([a-z]+\.js)'", file.read_text())
    }
    assert {"api.js", "dom.js", "live.js", "words.js"} <= modules
    assert "/web/app.js" in assets
    assert "/web/style.css" in assets
    for path in [*assets, *(f"/web/{module}" for module in sorted(modules))]:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        kind = "javascript" if path.endswith(".js") else "css"
        assert kind in answer.headers["content-type"], path
        assert answer.headers["content-security-policy"] == web.CONTENT_SECURITY_POLICY
        again = await client.get(path, headers={"if-none-match": answer.headers["etag"]})
        assert again.status_code == 304, path


async def test_a_missing_file_is_the_api_404_and_the_api_routes_stay_as_they_are(client: httpx.AsyncClient) -> None:
    missing = await client.get("/web/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["reason"] == "NOT_FOUND"
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]


def test_the_client_never_turns_text_into_markup() -> None:
    """User text becomes text nodes only: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    for file in WEB.iterdir():
        if file.name.endswith(".js"):
            assert not sinks.search(file.read_text()), file.name
