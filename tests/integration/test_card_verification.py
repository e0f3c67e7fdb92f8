"""Card verification with a real worker, Redis and RabbitMQ: an agent that asks for it and
serves its card is `verified: true` (event, GET, filter on both discovery paths); a card at an
address the guard forbids, or another card, is `false` and the forbidden listener hears
nothing; the registration is applied and joined before the check answers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from agentroster.api.app import create_api
from agentroster.client import DiscoveryClient, Roster
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.card_server import CardServer, Reply
from tests.helpers import EventCollector, RawPublisher, serve_api, serve_http
from tests.integration.agents import a2a_card, command_body

V10 = "/.well-known/agent-card.json"


def served_card(agent_id: str, base: str) -> dict[str, Any]:
    """The A2A card of `agent_id` whose endpoint is under `base`."""
    card = a2a_card(f"Agent {agent_id}")
    card["supportedInterfaces"][0]["url"] = f"{base}/a2a"
    return card


@asynccontextmanager
async def worker_with(settings: Settings, **update: Any) -> AsyncIterator[Worker]:
    """A started worker of the test registry with some settings changed."""
    async with create_worker(settings.model_copy(update=update)) as running:
        yield running


async def register(settings: Settings, agent_id: str, card: dict[str, Any], **more: Any) -> None:
    """Publish one registration by hand."""
    async with RawPublisher(settings.broker_url, settings.prefix) as raw:
        body = command_body(agent_id, card=card, ttl_s=60, **more)
        await raw.send(f"agent.{agent_id}.register", body)


def verified_event(agent_id: str) -> Any:
    """A predicate: the agent's `agent.updated` with reason `verified` arrived."""
    return lambda evs: any(
        e.kind == "updated" and e.agent_id == agent_id and e.data["reason"] == "verified"
        for e in evs
    )


async def agent(api: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    """GET /v1/agents/{agent_id}."""
    answer = await api.get(f"/v1/agents/{agent_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def ids(api: httpx.AsyncClient, revision: int, **params: Any) -> list[str]:
    """The ids of a discovery page at `revision` or later."""
    answer = await api.get("/v1/agents", params={"min_revision": revision, **params})
    assert answer.status_code == 200, answer.text
    return [a["agent_id"] for a in answer.json()["agents"]]


async def test_matching_card_verified_and_filterable(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """verified true for the agent serving its card, false for one serving another card, null
    for one that did not ask; `?verified=` gives the same answers from memory and Redis."""
    async with (
        CardServer() as good,
        CardServer() as other,
        worker_with(settings, verify_networks=["127.0.0.0/8"]),
    ):
        good.routes[V10] = Reply.json(served_card("good", good.url))
        other.routes[V10] = Reply.json(served_card("someone-else", other.url))
        await register(settings, "good", served_card("good", good.url), verify=True)
        await register(settings, "bad", served_card("bad", other.url), verify=True)
        await register(settings, "plain", served_card("plain", good.url))
        collected = await events.wait_until(
            lambda evs: verified_event("good")(evs) and verified_event("bad")(evs)
        )
        by_agent = {e.agent_id: e for e in collected if e.data["reason"] == "verified"}
        assert by_agent["good"].data["verified"] is True
        assert by_agent["bad"].data["verified"] is False
        assert by_agent["good"].data["card"]["name"] == "Agent good"  # updated carries the card
        revision = max(e.revision for e in collected)

        redis_settings = settings.model_copy(update={"discovery_source": "redis"})
        async with serve_api(settings) as memory, serve_api(redis_settings) as redis:
            for api in (memory, redis):
                assert (await agent(api, "good"))["verified"] is True
                assert (await agent(api, "bad"))["verified"] is False
                assert (await agent(api, "plain"))["verified"] is None
                assert await ids(api, revision, verified="true") == ["good"]
                assert await ids(api, revision, verified="false") == ["bad"]
                assert await ids(api, revision) == ["bad", "good", "plain"]
                assert await ids(api, revision, verified="true", skill="echo") == ["good"]
            pages = [
                (await api.get("/v1/agents", params={"min_revision": revision})).json()["agents"]
                for api in (memory, redis)
            ]
            assert pages[0] == pages[1]
            hostile = await memory.get("/v1/agents", params={"verified": "maybe"})
            assert hostile.status_code == 422
            assert hostile.json()["error"]["code"]
        # the client's filters say the same: DiscoveryClient asks the API, a Roster its copy
        async with serve_http(create_api(settings)) as url:
            async with DiscoveryClient(url) as client:
                found = [a.agent_id async for a in client.find(verified=True)]
                assert found == ["good"]
                found = [a.agent_id async for a in client.find(verified=False)]
                assert found == ["bad"]
            async with Roster(url, verified=True) as scoped, Roster(url) as roster:
                assert [a.agent_id for a in scoped.agents()] == ["good"]
                assert [a.agent_id for a in roster.find(verified=False)] == ["bad"]
                assert [a.agent_id for a in roster.find(verified=True, skill="echo")] == ["good"]
                assert len(roster.find()) == 3
            for flag, expected in (("--verified", "good"), ("--unverified", "bad")):
                cli = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "agentroster", "agents", "--url", url, flag, "--json",
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                out, _ = await cli.communicate()
                assert cli.returncode == 0
                assert [json.loads(line)["agent_id"] for line in out.splitlines()] == [expected]
        # one check, for "good" ("plain" asked for none): under the URL's path, then the origin
        assert [r.path for r in good.requests] == [f"/a2a{V10}", "/a2a/.well-known/agent.json", V10]


async def test_forbidden_addresses_are_never_fetched(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """Without 127.0.0.0/8 allowed, a card on 127.0.0.1 is verified false and its listener is
    never called; a card pointing at cloud metadata is false too."""
    async with CardServer() as listener, worker_with(settings):
        listener.routes[V10] = Reply.json(served_card("local", listener.url))
        await register(settings, "local", served_card("local", listener.url), verify=True)
        metadata = served_card("meta", "http://169.254.169.254/latest/meta-data")
        await register(settings, "meta", metadata, verify=True)
        collected = await events.wait_until(
            lambda evs: verified_event("local")(evs) and verified_event("meta")(evs)
        )
        assert {e.data["verified"] for e in collected if e.data["reason"] == "verified"} == {False}
        assert listener.requests == []


async def test_the_write_path_does_not_wait_for_the_check(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """The card server holds its answer: the registration is applied and joined meanwhile
    (verified null); once released, agent.updated says verified true. A new card resets it."""
    release = asyncio.Event()
    async with (
        CardServer() as slow,
        worker_with(settings, verify_networks=["127.0.0.0/8"], verify_timeout_s=30) as worker,
    ):
        card = served_card("slow", slow.url)
        slow.routes[V10] = Reply.json(card, hold_after=0, release=release)
        await register(settings, "slow", card, verify=True)
        await events.wait_until(lambda evs: any(e.kind == "joined" for e in evs))
        await slow.received.wait()  # the check is under way, held by the server
        async with serve_api(settings) as api:
            assert (await agent(api, "slow"))["verified"] is None
            release.set()
            (updated,) = [
                e for e in await events.wait_until(verified_event("slow")) if e.kind == "updated"
            ]
            assert (await agent(api, "slow"))["verified"] is True

            changed = {**card, "description": "a new card"}
            await register(settings, "slow", changed, seq=2)
            collected = await events.wait_until(
                lambda evs: any(e.data["reason"] == "card-changed" for e in evs)
            )
            (card_changed,) = [e for e in collected if e.data["reason"] == "card-changed"]
            assert "verified" not in card_changed.data
            assert (await agent(api, "slow"))["verified"] is None
            assert await ids(api, card_changed.revision, verified="true") == []
        await worker.verifier.idle()
        assert updated.revision < card_changed.revision


async def test_no_check_when_turned_off(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """AGENTROSTER_VERIFY_CARDS=off: a registration asking for a check gets none."""
    async with (
        CardServer() as listener,
        worker_with(settings, verify_cards="off", verify_networks=["127.0.0.0/8"]) as worker,
    ):
        card = served_card("quiet", listener.url)
        listener.routes[V10] = Reply.json(card)
        await register(settings, "quiet", card, verify=True)
        await events.wait_until(lambda evs: any(e.kind == "joined" for e in evs))
        await worker.verifier.idle()  # offered (or not) before the batch was acknowledged
        assert listener.requests == []


async def test_all_checks_every_registration_once(
    settings: Settings, cleanup: None, events: EventCollector
) -> None:
    """AGENTROSTER_VERIFY_CARDS=all: checked without asking, and a re-registration of the
    same card is not fetched again."""
    async with (
        CardServer() as listener,
        worker_with(settings, verify_cards="all", verify_networks=["127.0.0.0/8"]) as worker,
    ):
        card = served_card("every", listener.url)
        listener.routes[V10] = Reply.json(card)
        await register(settings, "every", card)
        await events.wait_until(verified_event("every"))
        await register(settings, "every", card, seq=2)
        await register(settings, "every", card, seq=3, instance_id="i-2")
        async with serve_api(settings) as api:
            detail = await agent(api, "every")
            assert detail["live_instances"] == 2  # both registrations applied
        await worker.verifier.idle()
        assert [r.path for r in listener.requests][-1] == V10
        assert len(listener.requests) == 3  # one check: /a2a's two paths, then the origin's
