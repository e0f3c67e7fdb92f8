"""The keys of signed cards, without Redis or a broker: a `jku` served by a local server
through the guard (allowed, forbidden, not the agent's host, plain http to a public address,
redirected, huge, slow, not a JWKS), the cache of key sets, the trust store setting, and the
verifier's bounds."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agentroster.contracts import Register
from agentroster.contracts.commands import command_json
from agentroster.registry.card_signature import Reason, Verdict
from agentroster.registry.prepare import Limits, prepare
from agentroster.settings import Settings
from agentroster.store.redis_store import VerifyResult
from agentroster.worker.card_fetch import CardFetcher, FetchPolicy
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.net_guard import parse_networks
from agentroster.worker.signature_check import SignatureChecker, SignatureVerifier
from agentroster.worker.signature_keys import KeySource, load_jwks
from tests.card_server import CardServer, Reply
from tests.signing import SigningKey, card, hosts_of, key_set, verdict_of

JWKS = "/jwks.json"
LOCAL = parse_networks(["127.0.0.0/8"])


@pytest.fixture
async def server() -> AsyncIterator[CardServer]:
    """A JWKS server on 127.0.0.1."""
    async with CardServer() as running:
        yield running


def fetcher(allowed: Any = LOCAL, **policy: Any) -> CardFetcher:
    """The worker's jku fetcher: the guard's policy, no redirects."""
    return CardFetcher(FetchPolicy(allowed=tuple(allowed), max_redirects=0, **policy))


async def test_jku_served_where_the_guard_allows_is_valid(server: CardServer) -> None:
    """A kid not in the trust store, its JWKS at the agent's own host (127.0.0.1, allowed):
    fetched once, valid; a second check of another card by the same key uses the cache."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    keys = KeySource([], fetcher())
    checker = SignatureChecker(keys)
    first = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    second = key.sign(card(f"{server.url}/b", name="Other"), jku=f"{server.url}{JWKS}")
    for document in (first, second):
        found = await checker.verdict(orjson.dumps(document), hosts_of(document))
        assert found == Verdict("valid")
    assert [r.path for r in server.requests] == [JWKS]
    assert keys.fetches == 1
    await keys.aclose()
    checker.close()


async def test_jku_at_a_forbidden_address_is_not_fetched(server: CardServer) -> None:
    """Loopback not allowed by the guard: the listener is never called, invalid jku-refused."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher(allowed=()))
    assert (found.status, found.reason) == ("invalid", Reason.JKU_REFUSED)
    assert "127.0.0.1 is not a public address" in found.why
    assert server.requests == []


async def test_jku_on_a_host_not_the_agents_is_not_fetched(server: CardServer) -> None:
    """A jku on another host than the agent's endpoints: refused before any request, so no
    one can vouch for a card with a key set of their own."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    signed = key.sign(card("https://weather.example/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher())
    assert found.reason is Reason.JKU_REFUSED
    assert server.requests == []


async def test_jku_over_plain_http_to_a_public_address_refused() -> None:
    """A jku `http://` URL whose host resolves to a public address: refused before any
    connection (RFC 7515 wants TLS for a key set); https would be fetched."""
    resolved: list[str] = []

    async def public(host: str, port: int) -> list[Any]:
        resolved.append(host)
        return [ipaddress.ip_address("93.184.216.34")]

    key = SigningKey.new(kid="remote")
    signed = key.sign(card("http://agent.example/a2a"), jku="http://agent.example/jwks.json")
    plain = CardFetcher(FetchPolicy(max_redirects=0, timeout_s=5), resolver=public)
    found = await verdict_of(signed, fetcher=plain)
    assert (found.reason, resolved) == (Reason.JKU_REFUSED, ["agent.example"])
    assert "https only" in found.why


async def test_jku_redirect_refused(server: CardServer) -> None:
    """A jku answering with a redirect (even to the same origin): refused, not followed."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.redirect("/elsewhere.json")
    server.routes["/elsewhere.json"] = Reply.json(key_set(key))
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher())
    assert found.reason is Reason.JKU_REFUSED
    assert "redirect" in found.why
    assert [r.path for r in server.requests] == [JWKS]


@pytest.mark.parametrize("stream", [False, True])
async def test_huge_jwks_refused(server: CardServer, stream: bool) -> None:
    """A key set beyond the cap, announced or streamed: jku-too-large."""
    key = SigningKey.new(kid="remote")
    padding = [{"kty": "oct", "k": "x" * 1000, "kid": f"p{n}"} for n in range(100)]
    server.routes[JWKS] = Reply.json({"keys": [*padding, key.public_jwk]}, stream=stream)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher(max_bytes=4096))
    assert found.reason is Reason.JKU_TOO_LARGE


async def test_slow_jwks_ends_at_the_deadline(server: CardServer) -> None:
    """A JWKS server that stalls mid-body: jku-unreachable at the deadline, while the server
    still holds the rest."""
    key = SigningKey.new(kid="remote")
    release = asyncio.Event()
    server.routes[JWKS] = Reply.json(key_set(key), hold_after=5, release=release)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    try:
        found = await verdict_of(signed, fetcher=fetcher(timeout_s=0.2))
        assert found.reason is Reason.JKU_UNREACHABLE
        assert not release.is_set()
    finally:
        release.set()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"<html>"), Reason.JKU_BAD),
        (Reply.json({"keys": "no"}), Reason.JKU_BAD),
        (Reply.json({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "remote"}]}), Reason.NO_KEY),
        (Reply(status=500), Reason.JKU_UNREACHABLE),
    ],
)
async def test_bad_jwks_answers(server: CardServer, reply: Reply, reason: Reason) -> None:
    """Not JSON, not a JWKS, only a shared secret with the kid (never used), an error: invalid
    with the reason."""
    server.routes[JWKS] = reply
    signed = SigningKey.new(kid="remote").sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    assert (await verdict_of(signed, fetcher=fetcher())).reason is reason


async def test_one_fetch_for_concurrent_checks_and_cached_failures(server: CardServer) -> None:
    """Ten checks naming one held JWKS URL share one request; a failed fetch is cached too, so
    a flood naming a bad URL costs one request per cache period."""
    key = SigningKey.new(kid="remote")
    release = asyncio.Event()
    server.routes[JWKS] = Reply.json(key_set(key), hold_after=0, release=release)
    keys = KeySource([], fetcher())
    checker = SignatureChecker(keys)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    hosts = hosts_of(signed)
    checks = [asyncio.create_task(checker.verdict(orjson.dumps(signed), hosts)) for _ in range(10)]
    await server.received.wait()
    release.set()
    assert {v.status for v in await asyncio.gather(*checks)} == {"valid"}
    assert keys.fetches == 1

    server.routes["/broken.json"] = Reply(status=500)
    broken = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}/broken.json")
    for _ in range(3):
        found = await checker.verdict(orjson.dumps(broken), hosts)
        assert found.reason is Reason.JKU_UNREACHABLE
    assert [r.path for r in server.requests] == [JWKS, "/broken.json"]
    await keys.aclose()
    checker.close()


async def test_cache_bounded() -> None:
    """At most `cache_size` key sets are kept; the oldest goes first."""

    class Served(CardFetcher):
        async def fetch(self, url: str, *, public_needs_tls: bool = False) -> bytes:
            return orjson.dumps({"keys": []})

    keys = KeySource([], Served(FetchPolicy()), cache_size=2)
    for n in range(5):
        await keys.jwks(f"https://a.example/{n}")
    assert list(keys._cache) == ["https://a.example/3", "https://a.example/4"]


def test_trust_store_setting(tmp_path: Path) -> None:
    """Inline JSON or a file; secret (oct) keys are never trusted; a bad value says why."""
    key = SigningKey.new()
    inline = orjson.dumps(key_set(key)).decode()
    path = tmp_path / "jwks.json"
    path.write_text(inline)
    assert [k.key_id for k in load_jwks(inline)] == ["k1"]
    assert [k.key_id for k in load_jwks(str(path))] == ["k1"]
    assert load_jwks("") == []
    assert load_jwks('{"keys": []}') == []
    secret_only = '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'
    for bad, says in [
        ("{nope", "not JSON"),
        ('{"k": 1}', "not a JWKS"),
        ("/no/such", "cannot"),
        (secret_only, "no usable public key"),
    ]:
        with pytest.raises(ValueError, match=says):
            load_jwks(bad)
    for bad, says in [("{nope", "not JSON"), ('{"k": 1}', "not a JWKS"), ("/no/such", "cannot")]:
        with pytest.raises(ValidationError, match=says):  # stops the worker at its settings
            Settings(signature_jwks=bad)
    assert Settings(signature_jwks=str(path)).signature_jwks == str(path)


class GatedStore:
    """What the verifier asks of the store: the card of a state (after `gate` opens), and the
    recorded results."""

    def __init__(self, cards: dict[str, bytes], gate: asyncio.Event) -> None:
        self.cards = cards
        self.gate = gate
        self.recorded: list[tuple[str, str, str]] = []

    async def card_to_check(self, agent_id: str, state_digest: str) -> bytes | None:
        await self.gate.wait()
        return self.cards[agent_id]

    async def record_signature(self, agent_id: str, state_digest: str, signature: str) -> Any:
        self.recorded.append((agent_id, state_digest, signature))
        return VerifyResult(recorded=True, changed=True)


def registration(agent_id: str, document: dict[str, Any], seq: int = 1) -> Any:
    """A prepared registration of `document`."""
    body = Register(
        agent_id=agent_id,
        instance_id="i-1",
        seq=seq,
        ttl_s=30,
        card=document,
        sent_at=datetime.now(UTC),
    )
    return prepare(f"agent.{agent_id}.register", command_json(body), None, Limits())


async def test_queue_bounded_one_place_per_agent() -> None:
    """An agent registering 50 new signed cards while its check waits holds one place (its
    newest state is the one checked); past the bound of distinct agents a check is dropped and
    counted; an unsigned registration is never queued."""
    key = SigningKey.new()
    documents = {a: key.sign(card(name=a)) for a in ("first", "greedy", "other", "late")}
    gate = asyncio.Event()
    store = GatedStore({a: orjson.dumps(d) for a, d in documents.items()}, gate)
    checker = SignatureChecker(KeySource(load_jwks(orjson.dumps(key_set(key)).decode()), None))
    metrics = WorkerMetrics()
    made = SignatureVerifier(store, checker, metrics, queue_size=2, concurrency=1)  # type: ignore[arg-type]
    made.start()
    try:
        made.offer(registration("plain", card()))  # unsigned: recorded by apply.lua
        made.offer(registration("first", documents["first"]))
        await asyncio.sleep(0)  # the one task takes it and waits at the gate: the queue is empty
        greedy = [
            registration("greedy", key.sign(card(name=f"greedy {n}")), seq=n) for n in range(1, 51)
        ]
        for command in greedy:
            made.offer(command)  # one place, the newest state
        made.offer(registration("other", documents["other"]))  # the second place
        made.offer(registration("late", documents["late"]))  # dropped: two agents wait
        dropped = metrics.registry.get_sample_value(
            "agentroster_signature_checks_total", {"result": "dropped"}
        )
        assert dropped == 1
        gate.set()
        await made.idle()
    finally:
        await made.stop()
    assert [(a, s) for a, _, s in store.recorded] == [
        ("first", "valid"),
        ("greedy", "valid"),
        ("other", "valid"),
    ]
    assert store.recorded[1][1] == greedy[-1].state_digest
