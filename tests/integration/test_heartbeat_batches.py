"""Gateway heartbeat batches end to end: the real broker, worker and Redis.

The API coalesces HTTP heartbeats into one message (`agent._gateway.heartbeats`); the worker
applies each item as the single heartbeat it stands for, with its own principal, and
dead-letters a refused item alone. Only a gateway user may publish one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from aiormq.exceptions import ChannelAccessRefused
from pydantic import SecretStr

from agentroster.contracts import DETAIL_HEADER, REASON_HEADER, ROUTING_KEY_HEADER, Topology
from agentroster.contracts.gateway import (
    HEARTBEAT_BATCH_KEY,
    HEARTBEAT_BATCH_TYPE,
    PRINCIPAL_HEADER,
)
from agentroster.contracts.ids import broker_user
from agentroster.settings import Settings
from agentroster.store.api_keys import KeyStore
from agentroster.worker import Worker
from tests.faults.proxy import TcpProxy
from tests.helpers import EventCollector, RawPublisher, drain_queue, serve_api
from tests.integration.agents import a2a_card
from tests.integration.broker_users import Admin

KEY = "test-bootstrap-admin-key-" + "b" * 16


def with_key(settings: Settings, **more: Any) -> Settings:
    """The test registry's settings with the bootstrap admin key (and `more`)."""
    return settings.model_copy(update={"bootstrap_admin_key": SecretStr(KEY), **more})


@pytest.fixture
async def api(settings: Settings, worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    """The API of the test registry (its worker running)."""
    async with serve_api(with_key(settings)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def heartbeat_path(agent_id: str, instance_id: str = "i1") -> str:
    return f"/v1/agents/{agent_id}/instances/{instance_id}/heartbeat"


async def register(api: httpx.AsyncClient, agent_id: str, token: str) -> None:
    """Register instance i1 of `agent_id` with `token`, and wait until it is applied."""
    response = await api.put(
        f"/v1/agents/{agent_id}/instances/i1",
        json={"card": a2a_card(agent_id), "seq": 1},
        params={"wait": "true"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text


async def beat_and_wait(api: httpx.AsyncClient, agent_id: str, seq: int, token: str) -> str:
    """A heartbeat with `?wait`: the store's outcome (`applied`, `duplicate`)."""
    response = await api.post(
        heartbeat_path(agent_id),
        json={"seq": seq},
        params={"wait": "true"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    reason: str = response.json()["reason"]
    return reason


def item(principal: str, agent_id: str, seq: int) -> dict[str, Any]:
    command = {
        "agent_id": agent_id,
        "instance_id": "i1",
        "seq": seq,
        "sent_at": datetime.now(UTC).isoformat(),
        "ttl_s": 60.0,
        "card_digest": "",
    }
    return {"principal": principal, "command": command}


async def test_a_batch_applies_each_heartbeat_as_its_own_and_dead_letters_the_one_not_owned(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Heartbeats of several keys in one batch: each applied with its own principal; the one
    whose key does not own its agent is dead-lettered alone, `forbidden`, as its single
    heartbeat would be (routing key, body, principal header), and changes nothing."""
    prefix = worker.settings.prefix
    keys = KeyStore(worker.redis, prefix)
    team_a = (await keys.create("team-a", "agent", ["hb-*"])).token
    team_b = (await keys.create("team-b", "agent", ["hb-*"])).token
    await register(api, "hb-a", team_a)
    await register(api, "hb-b", team_b)
    await register(api, "hb-c", team_a)
    batch = {
        "heartbeats": [
            item("team-a", "hb-a", 10),
            item("team-b", "hb-b", 10),
            item("team-b", "hb-a", 11),  # team-b does not own hb-a
            item("team-a", "hb-c", 10),
        ]
    }
    async with RawPublisher(worker.settings.broker_url, prefix) as raw:
        await raw.send(
            HEARTBEAT_BATCH_KEY,
            batch,
            user_id=broker_user(worker.settings.broker_url),  # the gateway user
            type=HEARTBEAT_BATCH_TYPE,
        )
    [parked] = await drain_queue(worker.settings.broker_url, Topology(prefix).dead_letter_queue, 1)
    assert parked.headers[REASON_HEADER] == "forbidden"
    assert "owned by another identity" in str(parked.headers[DETAIL_HEADER])
    assert parked.headers[ROUTING_KEY_HEADER] == "agent.hb-a.heartbeat"
    assert parked.headers[PRINCIPAL_HEADER] == "team-b"
    assert parked.type == "heartbeat"
    assert orjson.loads(parked.body) == batch["heartbeats"][2]["command"]
    # seq 10 of each was applied: sent again, a duplicate; hb-a's seq 11 was not
    assert await beat_and_wait(api, "hb-a", 10, team_a) == "duplicate"
    assert await beat_and_wait(api, "hb-b", 10, team_b) == "duplicate"
    assert await beat_and_wait(api, "hb-c", 10, team_a) == "duplicate"
    assert await beat_and_wait(api, "hb-a", 11, team_a) == "applied"
    assert sorted((e.kind, e.agent_id) for e in events.events) == [
        ("joined", "hb-a"),
        ("joined", "hb-b"),
        ("joined", "hb-c"),
    ]


async def test_a_batch_from_a_broker_user_that_is_no_gateway_is_dead_lettered_forbidden(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient, admin: Admin
) -> None:
    """Only a gateway user speaks for keys: a batch from a registry-grade user that is not in
    AGENTROSTER_GATEWAY_USERS, or with no user_id, is refused whole and changes nothing."""
    prefix = worker.settings.prefix
    await register(api, "hb-owned", KEY)
    other = admin.grant("grant-registry", "other", prefix)
    batch = orjson.dumps({"heartbeats": [item("bootstrap", "hb-owned", 50)]})
    for url, user_id in [(other.url, other.name), (worker.settings.broker_url, None)]:
        async with RawPublisher(url, prefix) as raw:
            await raw.send(HEARTBEAT_BATCH_KEY, batch, user_id=user_id)
    parked = await drain_queue(worker.settings.broker_url, Topology(prefix).dead_letter_queue, 2)
    assert [p.headers[REASON_HEADER] for p in parked] == ["forbidden", "forbidden"]
    assert all("gateway user" in str(p.headers[DETAIL_HEADER]) for p in parked)
    assert [p.body for p in parked] == [batch, batch]  # the whole message, as it came
    assert await beat_and_wait(api, "hb-owned", 50, KEY) == "applied"  # 50 was never applied
    assert [(e.kind, e.agent_id) for e in events.events] == [("joined", "hb-owned")]


async def test_concurrent_http_heartbeats_are_all_applied(
    worker: Worker, api: httpx.AsyncClient
) -> None:
    """Many heartbeats at once through the API (batched while a publish is in flight): each
    answered 202 only once confirmed, and each applied."""
    agents = [f"many-{n}" for n in range(20)]
    for agent_id in agents:
        await register(api, agent_id, KEY)
    answers = await asyncio.gather(
        *(
            api.post(heartbeat_path(agent_id), json={"seq": 7}, headers=bearer(KEY))
            for agent_id in agents
        )
    )
    assert [a.status_code for a in answers] == [202] * len(agents)
    for agent_id in agents:
        assert await beat_and_wait(api, agent_id, 7, KEY) == "duplicate"


async def test_broker_down_is_503_for_a_heartbeat_and_its_retry_is_applied(
    settings: Settings, worker: Worker
) -> None:
    """The API's broker connection cut: a heartbeat (the batched path) is 503 with Retry-After,
    never 202; once the broker is back the client's retry is accepted and applied."""
    proxy = await TcpProxy.to(settings.broker_url)
    try:
        async with serve_api(with_key(settings, broker_url=proxy.url(settings.broker_url))) as api:
            await register(api, "hb-outage", KEY)
            proxy.cut()
            refused = await api.post(
                heartbeat_path("hb-outage"), json={"seq": 9}, headers=bearer(KEY)
            )
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "broker-unavailable"
            assert int(refused.headers["Retry-After"]) >= 1
            proxy.restore()
            async with asyncio.timeout(30):  # against a hang only
                while True:  # the client retries, as Retry-After asks
                    retried = await api.post(
                        heartbeat_path("hb-outage"), json={"seq": 9}, headers=bearer(KEY)
                    )
                    if retried.status_code != 503:
                        break
                    await asyncio.sleep(0.1)
            assert retried.status_code == 202, retried.text
            assert await beat_and_wait(api, "hb-outage", 9, KEY) == "duplicate"
    finally:
        await proxy.close()


async def test_an_agent_user_with_every_agent_id_cannot_publish_a_batch(
    worker: Worker, admin: Admin
) -> None:
    """`_gateway` is no agent id: even `--agents '*'` does not cover the batch routing key, so
    the broker refuses the publish itself (ACCESS_REFUSED) before the worker sees it."""
    names = Topology(worker.settings.prefix)
    agent = admin.grant("grant-agent", "agent", names.prefix, "--agents", "*")
    connection = await aio_pika.connect(agent.url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.commands_exchange, ensure=False)
        body = orjson.dumps({"heartbeats": [item("bootstrap", "anyone", 1)]})
        with pytest.raises(ChannelAccessRefused):
            await exchange.publish(
                aio_pika.Message(body, user_id=agent.name), routing_key=HEARTBEAT_BATCH_KEY
            )
    finally:
        await connection.close()
