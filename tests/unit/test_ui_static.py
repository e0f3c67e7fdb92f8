"""The dashboard's files as the API serves them: security headers, redirects, hostile paths,
and a committed build that loads nothing from elsewhere and never parses data as markup."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Scope

from agentroster.api import create_api
from agentroster.api.metrics import ApiMetrics
from agentroster.api.routes.ui import UI_DIRECTORY
from agentroster.settings import Settings

FILES = {
    "/ui/": "text/html",
    "/ui/app.js": "text/javascript",
    "/ui/index.css": "text/css",
    "/ui/favicon.svg": "image/svg+xml",
}


@pytest.fixture
def app() -> FastAPI:
    """The API (its static routes need no lifespan, so no services)."""
    return create_api(Settings())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API, in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
        yield http


@pytest.mark.parametrize(("path", "content_type"), FILES.items())
async def test_every_file_carries_a_strict_content_security_policy(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/", "/ui"])
async def test_root_and_ui_lead_to_the_dashboard(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"


async def raw_get(app: FastAPI, path: str) -> tuple[int, bytes]:
    """GET `path` exactly as given (no client normalising `..`): status and body."""
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if requested:  # the client stays connected: the response ends when it is sent
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"registry.test")],
        "client": ("127.0.0.1", 1),
        "server": ("registry.test", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../routes/ui.py",  # a real file beside the build
        "/ui/../../settings.py",
        "/ui/%2e%2e/routes/ui.py",
        "/ui/..%2froutes%2fui.py",
        "/ui/\x00",
        "/ui/" + "a" * 10_000,
        "/ui/" + "../" * 200 + "etc/passwd",
    ],
)
async def test_hostile_paths_get_a_404_and_nothing_outside_the_build(
    app: FastAPI, path: str
) -> None:
    assert (await raw_get(app, "/ui/app.js"))[0] == 200  # the raw request reaches the files
    status, body = await raw_get(app, path)
    assert status == 404
    assert b"not-found" in body


async def test_files_answer_only_reads(client: httpx.AsyncClient) -> None:
    assert (await client.head("/ui/app.js")).status_code == 200
    response = await client.post("/ui/app.js", content=b"x" * 1000)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method-not-allowed"


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes, and whether it had inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open in {"script", "style"} and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


async def test_the_page_loads_only_its_own_files_and_has_no_inline_code(
    client: httpx.AsyncClient,
) -> None:
    parser = _Tags()
    parser.feed((UI_DIRECTORY / "index.html").read_text())
    assert parser.inline == []
    references = []
    for tag, attrs in parser.tags:
        assert not [name for name in attrs if name.startswith("on")], tag
        assert "style" not in attrs, tag
        if tag == "style":
            pytest.fail("an inline <style> element")
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None and not value.startswith("#"):
                references.append(value)
    assert references  # the script, the stylesheet, the icon
    for reference in references:
        assert reference.startswith("/ui/"), reference  # same origin, under the page
        assert (await client.get(reference)).status_code == 200, reference


def test_the_script_never_turns_data_into_markup_or_code() -> None:
    script = (UI_DIRECTORY / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert not re.search(r"new Function\b", script)
    assert not re.search(r"https?://", script)  # every request goes to the page's origin


def test_the_openapi_description_links_the_dashboard(app: FastAPI) -> None:
    assert "[/ui/](/ui/)" in (app.description or "")
    assert not [path for path in app.openapi()["paths"] if path in {"/", "/ui"}]


async def test_metrics_count_every_file_under_one_route_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Paths a client makes up under /ui/ add no metric series of their own."""
    metrics = next(m.kwargs["metrics"] for m in app.user_middleware if "metrics" in m.kwargs)
    assert isinstance(metrics, ApiMetrics)
    for path in ("/ui/", "/ui/app.js", "/ui/made-up-1", "/ui/made-up-2"):
        await client.get(path)
    routes = {
        sample.labels["route"]
        for metric in metrics.requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }
    assert routes == {"/ui/{path}"}
