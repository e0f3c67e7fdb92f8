"""`DiscoveryClient` and `agentroster agents` against a real worker, RabbitMQ and Redis.

Agents register over the broker with `Announcement`; once their `agent.joined` events arrived,
the client reads them through the API: in-process (httpx's ASGI transport, lifespan entered)
for the client, and a real `agentroster up` server for the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentroster.api import create_api
from agentroster.client import Announcement
from agentroster.client.discovery import DiscoveryClient, DiscoveryError
from agentroster.contracts import card_digest
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.helpers import EventCollector, registry_server
from tests.integration.agents import a2a_card


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[DiscoveryClient]:
    """A discovery client of the test registry's API, run in-process with its lifespan."""
    app = create_api(settings)
    async with (
        app.router.lifespan_context(app),
        DiscoveryClient("http://registry.test", transport=httpx.ASGITransport(app=app)) as client,
    ):
        yield client


def announcement(settings: Settings, card: dict[str, Any], **options: Any) -> Announcement:
    options.setdefault("ttl_s", 60)
    return Announcement(card, settings.broker_url, prefix=settings.prefix, **options)


async def joined(events: EventCollector, *agent_ids: str) -> None:
    """Wait for every agent's agent.joined."""
    wanted = set(agent_ids)
    await events.wait_until(lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "joined"})


async def test_find_pages_through_every_agent_exactly_once(
    worker: Worker, events: EventCollector, registry: DiscoveryClient
) -> None:
    """25 agents, pages of 7: `find` yields each once in id order; the pages are 7, 7, 7, 4."""
    ids = [f"finder-{n:02d}" for n in range(25)]
    async with contextlib.AsyncExitStack() as stack:
        for agent_id in ids:
            await stack.enter_async_context(announcement(worker.settings, a2a_card(agent_id)))
        await joined(events, *ids)

        found = [agent async for agent in registry.find(page_size=7)]
        assert [agent.agent_id for agent in found] == ids
        assert {agent.status for agent in found} == {"live"}
        assert all(agent.live_instances == 1 for agent in found)
        assert found[0].name == "finder-00"
        assert found[0].endpoints[0].url == "http://127.0.0.1:9/finder-00"

        sizes: list[int] = []
        cursor: str | None = None
        while True:
            page = await registry.list_page(page_size=7, cursor=cursor)
            sizes.append(len(page.agents))
            if (cursor := page.next_cursor) is None:
                break
            assert len(sizes) < 5, "the walk does not end"
        assert sizes == [7, 7, 7, 4]


async def test_get_reads_one_agent_and_none_for_an_unknown_id(
    worker: Worker, events: EventCollector, registry: DiscoveryClient
) -> None:
    """`get`: the agent with its instance and digest; None for an id never registered."""
    card = a2a_card("getter", skills=("echo", "sum"))
    async with announcement(worker.settings, card, labels={"team": "qa"}) as agent:
        await joined(events, "getter")
        detail = await registry.get("getter")
        assert await registry.get("never-registered") is None

    assert detail is not None
    assert detail.agent_id == "getter"
    assert detail.status == "live"
    assert detail.card_digest == card_digest(card)
    assert [i.instance_id for i in detail.instances] == [agent.instance_id]
    assert detail.lease.ttl_s == 60.0
    assert detail.agent.labels == {"team": "qa"}
    assert [s.id for s in detail.agent.skills] == ["echo", "sum"]
    assert detail.registry_revision is not None
    assert detail.registry_revision >= detail.revision


async def test_card_is_what_was_registered(
    worker: Worker, events: EventCollector, registry: DiscoveryClient
) -> None:
    """`card()` returns the registered card; asking for A2A 1.0 of a 1.0 card is accepted."""
    card = {**a2a_card("carded"), "description": 'Grüße, 天気 and "quotes"', "extra": [1, None]}
    async with announcement(worker.settings, card):
        await joined(events, "carded")
        assert await registry.card("carded") == card
        assert (await registry.card("carded", version="1.0"))["name"] == "carded"
        with pytest.raises(DiscoveryError) as raised:
            await registry.card("never-registered")
    assert raised.value.code == "agent-not-found"


async def test_an_invalid_request_is_a_discovery_error_naming_the_parameter(
    registry: DiscoveryClient,
) -> None:
    """The API's 422 arrives as `DiscoveryError` with its code and per-parameter details."""
    with pytest.raises(DiscoveryError) as raised:
        await registry.list_page(page_size=1001)
    exc = raised.value
    assert (exc.status, exc.code) == (422, "invalid-request")
    assert "limit" in exc.message
    assert [d["parameter"] for d in exc.details] == ["limit"]

    with pytest.raises(DiscoveryError) as bad_id:
        await registry.get("Not_A_Label")
    assert (bad_id.value.status, bad_id.value.code) == (422, "invalid-request")


# --- the CLI against a real `agentroster up` ---------------------------------------------------


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m agentroster <args>`: its exit code, stdout and stderr."""
    environment = {k: v for k, v in os.environ.items() if k != "AGENTROSTER_API_URL"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentroster",
        *args,
        env={**environment, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_agents_command_lists_registered_agents_as_json_and_table(
    settings: Settings, events: EventCollector
) -> None:
    """`agentroster agents`: JSON lines with --json, a table without; API errors exit 1."""
    async with registry_server(settings) as server:
        url = server.url
        first = announcement(settings, a2a_card("cli-alpha"))
        second = announcement(settings, a2a_card("cli-beta", skills=("sum",)))
        async with first, second:
            await joined(events, "cli-alpha", "cli-beta")

            code, out, err = await run_cli("agents", "--json", "--url", url)
            assert code == 0, err
            listed = [json.loads(line) for line in out.splitlines()]
            assert [a["agent_id"] for a in listed] == ["cli-alpha", "cli-beta"]
            assert {a["status"] for a in listed} == {"live"}
            assert listed[1]["agent"]["skills"][0]["id"] == "sum"

            # the URL from the environment, as the help says
            code, out, err = await run_cli("agents", env={"AGENTROSTER_API_URL": url})
            assert code == 0, err
            header, *rows = out.splitlines()
            assert header.split() == ["AGENT_ID", "STATUS", "LIVE", "NAME", "ENDPOINTS"]
            assert [row.split()[:4] for row in rows] == [
                ["cli-alpha", "live", "1", "cli-alpha"],
                ["cli-beta", "live", "1", "cli-beta"],
            ]
            assert "a2a/http http://127.0.0.1:9/cli-alpha" in rows[0]

            code, out, err = await run_cli("agents", "--url", url, "--status", "bogus")
            assert code == 1
            assert out == ""
            assert "invalid-request" in err
            assert "status" in err

    code, out, err = await run_cli("agents", "--url", url)  # the server has stopped
    assert code == 1
    assert f"cannot reach the registry API at {url}" in err
