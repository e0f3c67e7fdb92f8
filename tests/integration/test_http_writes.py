"""HTTP writes end to end (issue 13): the API publishes onto the real broker, the real worker
applies to the real Redis, and agents, events and dead letters are what an AMQP agent gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from pydantic import SecretStr

from agentroster.client import Announcement
from agentroster.contracts import DETAIL_HEADER, REASON_HEADER, Topology
from agentroster.contracts.gateway import DIRECT_REPLY_TO, PRINCIPAL_HEADER
from agentroster.contracts.ids import broker_user
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.faults.proxy import TcpProxy
from tests.helpers import EventCollector, RawPublisher, drain_queue, queue_depth, serve_api
from tests.integration.agents import a2a_card, command_body
from tests.integration.broker_users import Admin

KEY = "test-bootstrap-admin-key-" + "x" * 16
AUTH = {"Authorization": f"Bearer {KEY}"}


def with_key(settings: Settings, **more: Any) -> Settings:
    """The test registry's settings with the bootstrap admin key (and `more`)."""
    return settings.model_copy(update={"bootstrap_admin_key": SecretStr(KEY), **more})


@pytest.fixture
async def api(settings: Settings, worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    """The API of the test registry (its worker running), with the bootstrap key set."""
    async with serve_api(with_key(settings)) as client:
        yield client


async def dead_letters(worker: Worker, count: int) -> list[Any]:
    """The first `count` dead letters of the test registry."""
    names = Topology(worker.settings.prefix)
    return await drain_queue(worker.settings.broker_url, names.dead_letter_queue, count)


def path(agent_id: str, instance_id: str) -> str:
    return f"/v1/agents/{agent_id}/instances/{instance_id}"


async def test_an_http_agent_registers_heartbeats_expires_and_deregisters(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Issue 13, test 1: joined, listed, renewed; left `expired` once it stops; registered again
    and deregistered: left `deregistered`."""
    card = a2a_card("http-life")
    registered = await api.put(
        path("http-life", "i1"),
        json={"card": card, "ttl_s": 1},
        params={"wait": "true"},
        headers=AUTH,
    )
    assert registered.status_code == 200, registered.text
    answer = registered.json()
    assert answer["outcome"] == "applied"
    assert answer["reason"] == "applied"
    assert answer["ttl_s"] == 1.0
    assert registered.headers["Retry-After"] == "1"  # a third of 1 s, at least 1
    [joined] = await events.wait_until(lambda evs: bool(evs))
    assert (joined.kind, joined.agent_id, joined.data["reason"]) == (
        "joined",
        "http-life",
        "registered",
    )

    listed = await api.get("/v1/agents", params={"min_revision": joined.revision})
    assert [a["agent_id"] for a in listed.json()["agents"]] == ["http-life"]

    beat = await api.post(
        path("http-life", "i1") + "/heartbeat",
        json={"ttl_s": 1},
        params={"wait": "true"},
        headers=AUTH,
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["reason"] == "applied"  # no card_digest: not counted as a stale card
    assert beat.json()["seq"] > answer["seq"]

    # no more heartbeats: the lease runs out
    await events.wait_until(lambda evs: any(e.kind == "left" for e in evs))
    assert events.of("left")[0].data["reason"] == "expired"

    again = await api.post(
        "/v1/agents/http-life/instances", json={"card": card, "ttl_s": 60}, headers=AUTH
    )
    assert again.status_code == 202, again.text
    assert again.json()["outcome"] == "accepted"
    assert again.headers["Location"] == path("http-life", again.json()["instance_id"])
    await events.wait_until(lambda evs: len([e for e in evs if e.kind == "joined"]) == 2)
    gone = await api.delete(again.headers["Location"], params={"wait": "true"}, headers=AUTH)
    assert gone.status_code == 200, gone.text
    await events.wait_until(lambda evs: len([e for e in evs if e.kind == "left"]) == 2)
    assert [(e.kind, e.data["reason"]) for e in events.events] == [
        ("joined", "registered"),
        ("left", "expired"),
        ("joined", "registered"),
        ("left", "deregistered"),
    ]
    assert (
        await queue_depth(
            worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue
        )
        == 0
    )


async def test_an_amqp_user_cannot_write_an_http_agent_nor_a_key_an_amqp_users_agent(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient, admin: Admin
) -> None:
    """Issue 13, test 2: one ownership rule for both paths, refused either way."""
    prefix = worker.settings.prefix
    owned = await api.put(
        path("http-owned", "i1"),
        json={"card": a2a_card("http-owned")},
        params={"wait": "true"},
        headers=AUTH,
    )
    assert owned.status_code == 200, owned.text
    amqp_user = admin.grant("grant-agent", "agent", prefix, "--agents", "*")

    # an AMQP agent (its own broker user) tries to register the HTTP agent's agent
    async with Announcement(a2a_card("http-owned"), amqp_user.url, prefix=prefix, ttl_s=60):
        [parked] = await dead_letters(worker, 1)
    assert parked.headers[REASON_HEADER] == "forbidden"
    assert "owned by another identity" in str(parked.headers[DETAIL_HEADER])
    instances = await worker.redis.zrange(worker.store.keys.instances("http-owned"), 0, -1)
    assert instances == [b"i1"]  # nothing of the AMQP agent's

    # an AMQP agent's agent: the key's write is rejected, answered 403 with the reason
    async with Announcement(a2a_card("amqp-owned"), amqp_user.url, prefix=prefix, ttl_s=60):
        await events.wait_until(lambda evs: any(e.agent_id == "amqp-owned" for e in evs))
        taken = await api.put(
            path("amqp-owned", "intruder"),
            json={"card": a2a_card("amqp-owned")},
            params={"wait": "true"},
            headers=AUTH,
        )
        assert taken.status_code == 403, taken.text
        error = taken.json()["error"]
        assert error["code"] == "forbidden"
        assert error["details"]["reason"] == "forbidden"
        assert "owned by another identity" in error["message"]
        instances = await worker.redis.zrange(worker.store.keys.instances("amqp-owned"), 0, -1)
        assert b"intruder" not in instances


async def test_a_forged_principal_header_from_a_broker_user_is_dead_lettered(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient, admin: Admin
) -> None:
    """Issue 13, test 2: only a gateway user may speak for a key; an agent user who sets the
    header is refused `forbidden`, and the key's agent is untouched."""
    prefix = worker.settings.prefix
    owned = await api.put(
        path("http-keyed", "i1"),
        json={"card": a2a_card("http-keyed")},
        params={"wait": "true"},
        headers=AUTH,
    )
    assert owned.status_code == 200, owned.text
    mallory = admin.grant("grant-agent", "mallory", prefix, "--agents", "*")
    async with RawPublisher(mallory.url, prefix) as raw:
        await raw.send(
            "agent.http-keyed.deregister",
            command_body("http-keyed", "deregister", instance_id="i1", seq=2**52),
            user_id=mallory.name,
            headers={PRINCIPAL_HEADER: "bootstrap"},
            reply_to="amq.rabbitmq.reply-to.forged",
        )
    [parked] = await dead_letters(worker, 1)
    assert parked.headers[REASON_HEADER] == "forbidden"
    assert "gateway user" in str(parked.headers[DETAIL_HEADER])
    assert await worker.redis.zrange(worker.store.keys.instances("http-keyed"), 0, -1) == [b"i1"]
    assert [e.kind for e in events.events] == ["joined"]


async def test_a_rejected_registration_answers_its_dead_letter_reason(
    worker: Worker, api: httpx.AsyncClient
) -> None:
    """With wait, a command the worker dead-letters is answered with its reason (422)."""
    card = a2a_card("too-big") | {"padding": "x" * (worker.settings.max_card_bytes + 1)}
    response = await api.put(
        path("too-big", "i1"), json={"card": card}, params={"wait": "true"}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "card-too-large"
    [parked] = await dead_letters(worker, 1)
    assert parked.headers[REASON_HEADER] == "card-too-large"


async def test_a_heartbeat_of_an_unknown_agent_says_register_first(api: httpx.AsyncClient) -> None:
    """With wait, a heartbeat the registry ignores (no such agent) is 404, not `applied`."""
    response = await api.post(
        path("nobody", "i1") + "/heartbeat", params={"wait": "true"}, headers=AUTH
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "unknown-agent"


async def test_broker_down_is_503_and_the_retried_command_is_applied_once(
    settings: Settings, worker: Worker, events: EventCollector
) -> None:
    """Issue 13, test 5: the API's broker unreachable: 503 with Retry-After; once it is back, the
    client's retry is applied, exactly once."""
    proxy = await TcpProxy.to(settings.broker_url)
    try:
        api_settings = with_key(settings, broker_url=proxy.url(settings.broker_url))
        async with serve_api(api_settings) as api:
            proxy.cut()
            body = {"card": a2a_card("through-outage"), "seq": 7}
            refused = await api.put(path("through-outage", "i1"), json=body, headers=AUTH)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "broker-unavailable"
            assert int(refused.headers["Retry-After"]) >= 1
            proxy.restore()
            async with asyncio.timeout(30):  # against a hang only
                while True:  # the client retries, as Retry-After asks
                    retried = await api.put(
                        path("through-outage", "i1"),
                        json=body,
                        params={"wait": "true"},
                        headers=AUTH,
                    )
                    if retried.status_code != 503:
                        break
                    await asyncio.sleep(0.1)
            assert retried.status_code == 200, retried.text
            assert retried.json()["seq"] == 7
            await events.wait_until(lambda evs: any(e.kind == "joined" for e in evs))
            again = await api.put(
                path("through-outage", "i1"), json=body, params={"wait": "true"}, headers=AUTH
            )
            assert again.json()["reason"] == "duplicate"  # seq 7 again: ignored
    finally:
        await proxy.close()
    assert [(e.kind, e.agent_id) for e in events.events] == [("joined", "through-outage")]


async def test_replies_go_only_to_direct_reply_to_names(worker: Worker, prefix: str) -> None:
    """A gateway user's command whose `reply_to` names an ordinary queue gets no reply there;
    one with a direct reply-to name gets its reply (and, being later, proves the first done)."""
    connection = await aio_pika.connect(worker.settings.broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        victim = await channel.declare_queue(f"{prefix}-victim", exclusive=True)
        replies: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        direct = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await direct.consume(replies.put, no_ack=True)
        exchange = await channel.get_exchange(Topology(prefix).commands_exchange)
        for reply_to, agent_id in [(victim.name, "aimed"), (DIRECT_REPLY_TO, "asked")]:
            body = orjson.dumps(command_body(agent_id))
            await exchange.publish(
                aio_pika.Message(
                    body,
                    content_type="application/json",
                    user_id=broker_user(worker.settings.broker_url),  # a gateway user
                    headers={PRINCIPAL_HEADER: "someone"},
                    reply_to=reply_to,
                    correlation_id=agent_id,
                ),
                routing_key=f"agent.{agent_id}.register",
            )
        async with asyncio.timeout(30):  # against a hang only
            reply = await replies.get()
        assert reply.correlation_id == "asked"
        assert orjson.loads(reply.body) == {
            "outcome": "applied",
            "reason": "applied",
            "message": "",
        }
        declared = await channel.declare_queue(victim.name, passive=True)
        assert declared.declaration_result.message_count == 0
        assert replies.empty()
    finally:
        await connection.close()
