"""Property-based fuzzing of a running worker: whatever commands and AMQP properties arrive,
the worker keeps applying, and the API answers exactly what a model of the accepted commands
says (status, live instances, card, skill index).

Each hypothesis example sends a burst of commands (valid ones and damaged ones, with arbitrary
properties) for a few agents of its own, then a marker registration: the worker applies in
queue order, so once the marker joined, everything before it was applied or dead-lettered.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.helpers import EventCollector, RawPublisher, serve_api

AGENTS = 2
INSTANCES = 2
_examples = itertools.count()

#: How a command is damaged before it is sent ("" sends it as it is).
DAMAGES = ("", "junk-body", "no-seq", "seq-text", "other-agent", "extra-field", "bad-key")


@dataclass(frozen=True)
class Op:
    """One command of a burst: what it says, how it is damaged, how it is dressed."""

    kind: str
    agent: int
    instance: int
    seq: int
    version: int
    damage: str
    junk: bytes
    properties: dict[str, Any]


properties = st.fixed_dictionaries(
    {},
    optional={
        "content_type": st.sampled_from(["application/json", "text/plain", "", "x/\u00e9"]),
        "type": st.sampled_from(["register", "heartbeat", "deregister", "joined", ""]),
        "message_id": st.text(max_size=40),
        "correlation_id": st.text(max_size=40),
        "app_id": st.text(max_size=20),
        "priority": st.integers(0, 9),
        # `expiration` is left out: a message that expires in the queue is its sender's loss,
        # and the model could not tell whether it was applied
        "headers": st.dictionaries(
            st.text(min_size=1, max_size=20),
            st.one_of(
                st.text(max_size=40),
                st.binary(max_size=40).map(bytearray),  # AMQP byte arrays, UTF-8 or not
                st.integers(-(2**31), 2**31 - 1),
                st.booleans(),
            ),
            max_size=4,
        ),
    },
)
ops = st.builds(
    Op,
    kind=st.sampled_from(["register", "heartbeat", "deregister"]),
    agent=st.integers(0, AGENTS - 1),
    instance=st.integers(0, INSTANCES - 1),
    seq=st.integers(1, 3),
    version=st.integers(1, 3),
    damage=st.one_of(st.just(""), st.sampled_from(DAMAGES[1:])),  # half undamaged
    junk=st.binary(max_size=64),
    properties=properties,
)


def card(agent_id: str, version: int) -> dict[str, Any]:
    """A generic card whose one skill names its version (so the index shows which is held)."""
    return {"name": agent_id, "version": str(version), "skills": [{"id": f"s{version}"}]}


def wire(op: Op, agent_id: str) -> tuple[str, bytes]:
    """The routing key and body `op` is sent with."""
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "instance_id": f"i{op.instance}",
        "seq": op.seq,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    if op.kind == "register":
        body |= {"ttl_s": 120, "card": card(agent_id, op.version)}
    elif op.kind == "heartbeat":
        body |= {"ttl_s": 120, "card_digest": "sha256:any"}
    key = f"agent.{agent_id}.{op.kind}"
    match op.damage:
        case "junk-body":
            return key, op.junk
        case "no-seq":
            del body["seq"]
        case "seq-text":
            body["seq"] = str(op.seq) + "x"
        case "other-agent":
            body["agent_id"] = agent_id + "-other"
        case "extra-field":
            body["surprise"] = True
        case "bad-key":
            key = f"agent.{agent_id}.{op.kind}.more"
    return key, orjson.dumps(body)


@dataclass
class Model:
    """What the registry must hold after the accepted commands (one identity, long TTLs)."""

    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    seqs: dict[tuple[str, str], int] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)
    #: Each instance's place in its agent's order of first registrations.
    born: dict[tuple[str, str], int] = field(default_factory=dict)
    #: The instance whose card the agent holds: the newest live one (apply.lua, holds_card).
    holder: dict[str, str] = field(default_factory=dict)

    def apply(self, op: Op, agent_id: str) -> None:
        """Apply one undamaged command as the registry's rules say."""
        instance = f"i{op.instance}"
        last = self.seqs.get((agent_id, instance))
        if last is not None and last >= op.seq:
            return  # duplicate or late
        if op.kind == "heartbeat" and agent_id not in self.cards:
            return  # no card to renew against: ignored, seq untouched
        self.seqs[agent_id, instance] = op.seq
        instances = self.live.setdefault(agent_id, set())
        if op.kind == "deregister":
            instances.discard(instance)
            return
        was_live = bool(instances)
        instances.add(instance)
        if op.kind == "register" and self._holds_card(agent_id, instance, was_live):
            self.cards[agent_id] = card(agent_id, op.version)

    def _holds_card(self, agent_id: str, instance: str, was_live: bool) -> bool:
        """Whether a registration of `instance` sets the card: the newest live instance's wins."""
        if (agent_id, instance) not in self.born:
            self.born[agent_id, instance] = 1 + sum(a == agent_id for a, _ in self.born)
        holder = self.holder.get(agent_id)
        takes = (
            not was_live
            or holder is None
            or holder == instance
            or holder not in self.live[agent_id]
            or self.born[agent_id, instance] > self.born[agent_id, holder]
        )
        if takes:
            self.holder[agent_id] = instance
        return takes


@pytest.fixture
async def api(worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    """The read API of the fuzzed registry."""
    async with serve_api(worker.settings) as client:
        yield client


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(burst=st.lists(ops, min_size=1, max_size=25))
async def test_whatever_arrives_the_worker_applies_exactly_the_accepted_commands(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient, burst: list[Op]
) -> None:
    """Nothing a burst holds stops the worker; reads match the model of accepted commands."""
    n = next(_examples)
    agent_ids = [f"fz{n}-a{k}" for k in range(AGENTS)]
    marker = f"fz{n}-marker-{uuid.uuid4().hex[:6]}"
    model = Model()
    settings_: Settings = worker.settings
    async with RawPublisher(settings_.broker_url, settings_.prefix) as raw:
        for op in burst:
            key, body = wire(op, agent_ids[op.agent])
            await raw.send(key, body, **op.properties)
            if not op.damage:
                model.apply(op, agent_ids[op.agent])
        await raw.send(
            f"agent.{marker}.register",
            orjson.dumps(
                {
                    "agent_id": marker,
                    "instance_id": "m",
                    "seq": 1,
                    "ttl_s": 120,
                    "card": card(marker, 1),
                    "sent_at": datetime.now(UTC).isoformat(),
                }
            ),
        )
    await events.wait_until(lambda evs: any(e.agent_id == marker for e in evs))
    assert await worker.broker.ping(timeout=5), "the worker lost its broker connection"
    for agent_id in agent_ids:
        response = await api.get(f"/v1/agents/{agent_id}")
        if agent_id not in model.cards:
            assert response.status_code == 404, response.text
            continue
        assert response.status_code == 200, response.text
        detail = response.json()
        live = model.live.get(agent_id, set())
        assert detail["status"] == ("live" if live else "offline")
        assert {i["instance_id"] for i in detail["instances"]} == live
        held = (await api.get(f"/v1/agents/{agent_id}/card")).json()
        assert held == model.cards[agent_id]
    for k, agent_id in enumerate(agent_ids):  # every instance's seq, tombstones included
        for i in range(INSTANCES):
            seq = await worker.redis.hget(worker.store.keys.instance(agent_id, f"i{i}"), "seq")
            expected_seq = model.seqs.get((agent_id, f"i{i}"))
            assert (int(seq) if seq else None) == expected_seq, (k, i)
    for version in (1, 2, 3):
        page = (
            await api.get("/v1/agents", params={"skill": f"s{version}", "status": "all"})
        ).json()
        found = {a["agent_id"] for a in page["agents"]} & set(agent_ids)
        expected = {a for a, c in model.cards.items() if c["version"] == str(version)}
        assert found == expected
