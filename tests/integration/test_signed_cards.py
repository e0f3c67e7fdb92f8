"""Signed A2A cards with a real worker, Redis and RabbitMQ: signed with a key made in the test
and trusted, `valid`; the same card tampered, `invalid`; unsigned, `unsigned` (events, GET, the
filter on both discovery paths); a `jku` served where the guard allows it, `valid`, and where it
forbids it, never fetched; hostile key sets and signatures refused with their reason while
other agents' registrations and checks go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.card_server import CardServer, Reply
from tests.helpers import EventCollector, RawPublisher, ReceivedEvent, serve_api
from tests.integration.agents import a2a_card, command_body
from tests.signing import SigningKey, encode_header, key_set

JWKS = "/jwks.json"


@asynccontextmanager
async def worker_with(settings: Settings, **update: Any) -> AsyncIterator[Worker]:
    """A started worker of the test registry with some settings changed."""
    async with create_worker(settings.model_copy(update=update)) as running:
        yield running


def card_at(agent_id: str, base: str = "http://127.0.0.1:9") -> dict[str, Any]:
    """The A2A card of `agent_id` with its endpoint under `base`."""
    card = a2a_card(f"Agent {agent_id}")
    card["supportedInterfaces"][0]["url"] = f"{base}/{agent_id}"
    return card


async def register(settings: Settings, agent_id: str, card: dict[str, Any]) -> None:
    """Publish one registration by hand."""
    async with RawPublisher(settings.broker_url, settings.prefix) as raw:
        await raw.send(f"agent.{agent_id}.register", command_body(agent_id, card=card))


def checked(*agent_ids: str) -> Callable[[list[ReceivedEvent]], bool]:
    """A predicate: each agent's `agent.updated` with reason `signature` arrived."""

    def done(evs: list[ReceivedEvent]) -> bool:
        seen = {e.agent_id for e in evs if e.data.get("reason") == "signature"}
        return set(agent_ids) <= seen

    return done


def joined(agent_id: str) -> Callable[[list[ReceivedEvent]], bool]:
    """A predicate: the agent's `agent.joined` arrived."""
    return lambda evs: any(e.kind == "joined" and e.agent_id == agent_id for e in evs)


def signatures(events: list[ReceivedEvent]) -> dict[str, str]:
    """Each agent's signature as its `signature` events told it."""
    return {e.agent_id: e.data["signature"] for e in events if e.data["reason"] == "signature"}


def metric(worker: Worker, result: str) -> float:
    """The worker's signature checks counted under `result`."""
    value = worker.metrics.registry.get_sample_value(
        "agentroster_signature_checks_total", {"result": result}
    )
    return value or 0.0


async def ids(api: httpx.AsyncClient, revision: int, **params: Any) -> list[str]:
    """The ids of a discovery page at `revision` or later."""
    answer = await api.get("/v1/agents", params={"min_revision": revision, **params})
    assert answer.status_code == 200, answer.text
    return [a["agent_id"] for a in answer.json()["agents"]]


async def test_trusted_valid_tampered_invalid_unsigned(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """The trust store's key: the signed card is valid, the tampered one invalid, the plain one
    unsigned from its joined event on; one `signature` event per signed agent; GET and
    `?signature=` agree on the memory and Redis paths; a bad filter value is a 422."""
    key = SigningKey.new(kid="trusted")
    good = key.sign(card_at("good"))
    tampered = {**key.sign(card_at("tampered")), "description": "changed after signing"}
    async with worker_with(settings, signature_jwks=orjson.dumps(key_set(key)).decode()) as w:
        await register(settings, "good", good)
        await register(settings, "tampered", tampered)
        await register(settings, "plain", card_at("plain"))
        collected = await events.wait_until(
            lambda evs: checked("good", "tampered")(evs) and joined("plain")(evs)
        )
        await w.signatures.idle()
        assert metric(w, "valid") == 1
        assert metric(w, "bad-signature") == 1
    assert signatures(collected) == {"good": "valid", "tampered": "invalid"}
    on_join = {e.agent_id: e.data.get("signature") for e in collected if e.kind == "joined"}
    assert on_join == {"good": None, "tampered": None, "plain": "unsigned"}
    assert [e.agent_id for e in events.of("updated")] in (
        ["good", "tampered"],
        ["tampered", "good"],
    )  # exactly one event each for the signed ones, none for the plain one
    revision = max(e.revision for e in collected)

    redis_settings = settings.model_copy(update={"discovery_source": "redis"})
    async with serve_api(settings) as memory, serve_api(redis_settings) as redis:
        for api in (memory, redis):
            found = {
                a: (await api.get(f"/v1/agents/{a}")).json()["signature"]
                for a in ("good", "tampered", "plain")
            }
            assert found == {"good": "valid", "tampered": "invalid", "plain": "unsigned"}
            assert await ids(api, revision, signature="valid") == ["good"]
            assert await ids(api, revision, signature="invalid") == ["tampered"]
            assert await ids(api, revision, signature="unsigned") == ["plain"]
            assert await ids(api, revision, signature="valid", skill="echo") == ["good"]
            hostile = await api.get("/v1/agents", params={"signature": "trust-me"})
            assert hostile.status_code == 422
            assert hostile.json()["error"]["code"]
        card = await memory.get("/v1/agents/good/card")
        assert card.json() == good  # served as registered, signatures and all


async def test_jku_where_the_guard_allows_it_is_valid(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """No trust store: the signer's JWKS on the agent's own host (127.0.0.1, allowed) is
    fetched once and the card is valid."""
    async with CardServer() as server:
        key = SigningKey.new(kid="remote")
        server.routes[JWKS] = Reply.json(key_set(key))
        signed = key.sign(card_at("remote", server.url), jku=f"{server.url}{JWKS}")
        async with worker_with(settings, verify_networks=["127.0.0.0/8"]):
            await register(settings, "remote", signed)
            collected = await events.wait_until(checked("remote"))
        assert signatures(collected) == {"remote": "valid"}
        assert [r.path for r in server.requests] == [JWKS]


async def test_jku_at_a_forbidden_address_is_never_fetched(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """Loopback not allowed (the default guard): the JWKS listener is never called and the
    card is invalid, counted as jku-refused."""
    async with CardServer() as listener:
        key = SigningKey.new(kid="remote")
        listener.routes[JWKS] = Reply.json(key_set(key))
        signed = key.sign(card_at("local", listener.url), jku=f"{listener.url}{JWKS}")
        async with worker_with(settings) as worker:
            await register(settings, "local", signed)
            collected = await events.wait_until(checked("local"))
            await worker.signatures.idle()
            assert metric(worker, "jku-refused") == 1
        assert signatures(collected) == {"local": "invalid"}
        assert listener.requests == []


async def test_hostile_signers_do_not_delay_others(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """A JWKS server that holds its answer (then sends more than the cap), an `alg: none`
    signature and a `jku` that redirects: each invalid with its reason; while the held fetch
    is under way, other agents are registered, joined and checked."""
    release = asyncio.Event()
    trusted = SigningKey.new(kid="trusted")
    async with CardServer() as hostile:
        stranger = SigningKey.new(kid="remote")
        huge = {"keys": [{"kty": "oct", "k": "x" * 4096, "kid": "p"}, stranger.public_jwk]}
        hostile.routes[JWKS] = Reply.json(huge, hold_after=0, release=release, stream=True)
        hostile.routes["/moved.json"] = Reply.redirect(f"{hostile.url}/target.json")
        hostile.routes["/target.json"] = Reply.json(key_set(stranger))
        slow = stranger.sign(card_at("slow", hostile.url), jku=f"{hostile.url}{JWKS}")
        moved = stranger.sign(card_at("moved", hostile.url), jku=f"{hostile.url}/moved.json")
        forged = {"protected": encode_header({"alg": "none", "kid": "trusted"}), "signature": ""}
        none = {**card_at("none"), "signatures": [forged]}
        async with worker_with(
            settings,
            verify_networks=["127.0.0.0/8"],
            verify_timeout_s=30,
            signature_jwks=orjson.dumps(key_set(trusted)).decode(),
            signature_jwks_max_bytes=1024,
        ) as worker:
            try:
                await register(settings, "slow", slow)
                await hostile.received.wait()  # the fetch is under way, held by the server
                await register(settings, "quick", trusted.sign(card_at("quick")))
                await register(settings, "plain", card_at("plain"))
                await register(settings, "none", none)
                await register(settings, "moved", moved)
                collected = await events.wait_until(
                    lambda evs: checked("quick", "none", "moved")(evs) and joined("plain")(evs)
                )
                assert not checked("slow")(collected)  # still held
                assert signatures(collected) == {
                    "quick": "valid",
                    "none": "invalid",
                    "moved": "invalid",
                }
            finally:
                release.set()
            collected = await events.wait_until(checked("slow"))
            await worker.signatures.idle()
            assert signatures(collected)["slow"] == "invalid"
            for reason in ("jku-too-large", "algorithm-refused", "jku-refused"):
                assert metric(worker, reason) == 1, reason
        assert "/target.json" not in [r.path for r in hostile.requests]
