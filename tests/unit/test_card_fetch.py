"""Fetching an agent's well-known card through the guard, against a local HTTP server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from agentroster.registry.card_match import card_urls
from agentroster.worker.card_fetch import CardFetcher, FetchPolicy, Result, candidate_paths
from agentroster.worker.net_guard import IPAddress, parse_networks
from tests.card_server import CardServer, Reply

LOCAL = parse_networks(["127.0.0.0/8"])
V10 = "/.well-known/agent-card.json"
V03 = "/.well-known/agent.json"


def card(url: str, name: str = "Weather") -> dict[str, Any]:
    """An A2A v1.0 card served at `url`."""
    return {
        "name": name,
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
    }


@pytest.fixture
async def server() -> AsyncIterator[CardServer]:
    """A card server on 127.0.0.1."""
    async with CardServer() as running:
        yield running


def fetcher(allowed: Sequence[Any] = LOCAL, *, resolver: Any = None, **policy: Any) -> CardFetcher:
    """A fetcher allowed to reach 127.0.0.0/8 unless told otherwise."""
    options = {"resolver": resolver} if resolver else {}
    return CardFetcher(FetchPolicy(allowed=tuple(allowed), **policy), **options)


async def check(f: CardFetcher, base: str, registered: dict[str, Any]) -> Result:
    """Check `base` against the registered card, then close the fetcher."""
    try:
        return await f.check(base, registered["name"], card_urls(registered))
    finally:
        await f.aclose()


async def test_matching_card_is_verified(server: CardServer) -> None:
    """The v1.0 path serves the registered card: verified, with one GET and no credentials."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.json(registered)
    assert await check(fetcher(), f"{server.url}/", registered) is Result.VERIFIED
    [request] = server.requests
    assert request.method == "GET"
    assert request.headers["user-agent"].startswith("agentroster-card-check/")
    assert not {"cookie", "authorization", "proxy-authorization"} & request.headers.keys()


async def test_v03_path_after_the_v10_one(server: CardServer) -> None:
    """No v1.0 card: the v0.3 path is tried next; a v0.3 card matches a v1.0 registration that
    names the same agent at the same URL."""
    registered = card(f"{server.url}/a2a")
    server.routes[V03] = Reply.json({"name": "Weather", "url": f"{server.url}/a2a/"})
    assert await check(fetcher(), server.url, registered) is Result.VERIFIED
    assert [r.path for r in server.requests] == [V10, V03]


async def test_under_the_url_path_then_the_origin(server: CardServer) -> None:
    """A URL with a path: its well-known paths first, then the origin's."""
    registered = card(f"{server.url}/agents/weather")
    server.routes[V10] = Reply.json(registered)
    assert await check(fetcher(), f"{server.url}/agents/weather", registered) is Result.VERIFIED
    assert [r.path for r in server.requests] == [
        f"/agents/weather{V10}",
        f"/agents/weather{V03}",
        V10,
    ]


@pytest.mark.parametrize(
    "served",
    [
        card("http://elsewhere.example/a2a"),  # same name, no common endpoint
        {"name": "Someone else"},
        ["not", "an", "object"],
    ],
)
async def test_other_card_is_a_mismatch(server: CardServer, served: Any) -> None:
    """Another agent's card, or something that is not a card: mismatch."""
    registered = card(f"{server.url}/a2a")
    if isinstance(served, dict) and "supportedInterfaces" not in served:
        served = card(f"{server.url}/a2a", name=served["name"])
    server.routes[V10] = Reply.json(served)
    assert await check(fetcher(), server.url, registered) is Result.MISMATCH


async def test_loopback_refused_unless_allowed(server: CardServer) -> None:
    """Without 127.0.0.0/8 allowed, nothing reaches the local listener."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.json(registered)
    assert await check(fetcher(()), server.url, registered) is Result.REFUSED
    assert server.requests == []


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"])
async def test_numeric_spellings_refused(server: CardServer, spelling: str) -> None:
    """Other spellings of 127.0.0.1 are read as it, and refused as it."""
    base = f"http://{spelling}:{server.port}"
    registered = card(f"{base}/a2a")
    assert await check(fetcher(()), base, registered) is Result.REFUSED
    assert server.requests == []


@pytest.mark.parametrize("answer", ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"])
async def test_names_resolving_to_metadata_refused(server: CardServer, answer: str) -> None:
    """A host name whose DNS answer is a metadata address is refused, however it is written."""

    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(answer)]

    registered = card("http://agent.example/a2a")
    everything = parse_networks(["0.0.0.0/0", "::/0"])
    guarded = fetcher(everything, resolver=resolver)
    assert await check(guarded, "http://agent.example", registered) is Result.REFUSED


async def test_connects_to_the_checked_address_once(server: CardServer) -> None:
    """The name is resolved once; the connection goes to that address, with the name in the
    Host header: a second, different DNS answer (rebinding) is never asked for."""
    answers = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("169.254.169.254")]
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[IPAddress]:
        calls.append(host)
        return [answers[len(calls) - 1]]

    base = f"http://agent.test:{server.port}"
    registered = card(f"{base}/a2a")
    server.routes[V10] = Reply.redirect("/moved")
    server.routes["/moved"] = Reply.json(registered)
    assert await check(fetcher(resolver=resolver), base, registered) is Result.VERIFIED
    assert calls == ["agent.test"]
    assert {r.headers["host"] for r in server.requests} == {f"agent.test:{server.port}"}


async def test_same_origin_redirects_followed_without_cookies(server: CardServer) -> None:
    """A redirect within the origin is followed; a cookie it sets is not sent back."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.redirect("/card", headers={"Set-Cookie": "session=stolen"})
    server.routes["/card"] = Reply.json(registered)
    assert await check(fetcher(), server.url, registered) is Result.VERIFIED
    assert [r.path for r in server.requests] == [V10, "/card"]
    assert "cookie" not in server.requests[1].headers


async def test_redirect_to_another_host_refused(server: CardServer) -> None:
    """A redirect to another host (or port) is refused, and the other listener hears nothing."""
    async with CardServer() as other:
        registered = card(f"{server.url}/a2a")
        other.routes[V10] = Reply.json(registered)
        server.routes[V10] = Reply.redirect(f"{other.url}{V10}")
        assert await check(fetcher(), server.url, registered) is Result.REFUSED
        assert other.requests == []


@pytest.mark.parametrize(
    "location", ["http://user:pw@127.0.0.1/x", "file:///etc/passwd", "http://169.254.169.254/"]
)
async def test_hostile_redirects_refused(server: CardServer, location: str) -> None:
    """Redirects to credentials, other schemes or metadata are refused."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.redirect(location)
    assert await check(fetcher(), server.url, registered) is Result.REFUSED


async def test_redirect_loop_ends(server: CardServer) -> None:
    """At most three redirects are followed."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.redirect(V10)
    assert await check(fetcher(), server.url, registered) is Result.UNREACHABLE
    assert len(server.requests) == 4


@pytest.mark.parametrize("stream", [False, True])
async def test_oversized_body(server: CardServer, stream: bool) -> None:
    """A body beyond the cap is abandoned, whether or not its length was announced."""
    registered = card(f"{server.url}/a2a")
    big = {**registered, "padding": "x" * 5000}
    server.routes[V10] = Reply.json(big, stream=stream)
    assert await check(fetcher(max_bytes=1024), server.url, registered) is Result.TOO_LARGE


async def test_compressed_body_refused(server: CardServer) -> None:
    """A compressed answer (which could inflate past the cap) is not read."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.json(registered, headers={"Content-Encoding": "gzip"})
    assert await check(fetcher(), server.url, registered) is Result.UNREACHABLE


async def test_slow_body_stops_at_the_deadline(server: CardServer) -> None:
    """A server that sends part of a body and stalls: the check ends unreachable at its
    deadline, while the server still holds the rest."""
    registered = card(f"{server.url}/a2a")
    release = asyncio.Event()
    server.routes[V10] = Reply.json(registered, hold_after=10, release=release)
    try:
        assert await check(fetcher(timeout_s=0.2), server.url, registered) is Result.UNREACHABLE
        assert not release.is_set()
    finally:
        release.set()


async def test_nothing_listening_is_unreachable() -> None:
    """A refused connection is unreachable."""
    async with CardServer() as gone:
        base = gone.url
    registered = card(f"{base}/a2a")
    assert await check(fetcher(), base, registered) is Result.UNREACHABLE


async def test_no_card_found(server: CardServer) -> None:
    """Every well-known path 404s: unreachable (not verified)."""
    registered = card(f"{server.url}/a2a")
    assert await check(fetcher(), server.url, registered) is Result.UNREACHABLE
    assert [r.path for r in server.requests] == [V10, V03]


def test_candidate_paths() -> None:
    """v1.0 then v0.3, under the path then at the origin; the query is dropped."""
    assert candidate_paths("/") == [V10, V03]
    assert candidate_paths("/a/b/?x=1") == [f"/a/b{V10}", f"/a/b{V03}", V10, V03]


async def test_connection_cut_mid_body(server: CardServer) -> None:
    """A body cut short of its announced length is unreachable, not an error."""
    registered = card(f"{server.url}/a2a")
    body = b'{"name": "Weather"'
    server.routes[V10] = Reply(body=body, headers={"Content-Length": "5000"}, stream=True)
    assert await check(fetcher(), server.url, registered) is Result.UNREACHABLE


async def test_unparseable_redirect(server: CardServer) -> None:
    """A redirect whose location is not a URL ends the check, unreachable or refused."""
    registered = card(f"{server.url}/a2a")
    server.routes[V10] = Reply.redirect("http://[::1")
    assert await check(fetcher(), server.url, registered) in (Result.REFUSED, Result.UNREACHABLE)
