"""Discovery filters against 300 varied agents: every filter and combinations return exactly
the expected set, a cursor walk with limit 7 sees each match once, and status works.

The expected sets are computed here from the agents' specification, independently of the
registry's index terms. The API answers from its read model in memory; every walk is compared,
agent by agent and byte for byte, with the Redis query path's (an API with
`discovery_source=redis`), the test oracle of the read model.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.helpers import EventCollector, RawPublisher, serve_api

SKILLS = ("translate", "summarize", "forecast", "search", "code", "plan")
TAGS = ("Language", "weather", "web", "dev")


@dataclass(frozen=True)
class Spec:
    """One test agent: what it offers and how it is reached."""

    agent_id: str
    skills: tuple[str, ...]
    tags: tuple[str, ...]
    protocol: str
    transport: str
    team: str
    offline: bool

    def card(self) -> dict[str, Any]:
        skills = [
            {"id": s, "name": f"{s.title()} skill", "tags": list(self.tags)} for s in self.skills
        ]
        if self.protocol == "a2a":
            url = (
                f"amqp://127.0.0.1/?queue={self.agent_id}"
                if self.transport == "amqp"
                else f"http://127.0.0.1:9/{self.agent_id}"
            )
            binding = (
                "urn:agentroster:binding:amqp-0-9-1" if self.transport == "amqp" else "JSONRPC"
            )
            return {
                "name": f"Agent {self.agent_id}",
                "description": f"Does {' and '.join(self.skills)}",
                "version": "1.0.0",
                "supportedInterfaces": [
                    {"url": url, "protocolBinding": binding, "protocolVersion": "1.0"}
                ],
                "skills": skills,
            }
        return {"name": f"Agent {self.agent_id}", "description": "A tool server", "skills": skills}

    def endpoints(self) -> list[dict[str, Any]] | None:
        if self.protocol == "a2a":
            return None  # derived from the card
        return [{"transport": "http", "protocol": self.protocol, "url": "http://127.0.0.1:9/mcp"}]


def specs() -> list[Spec]:
    out = []
    for n in range(300):
        protocol = ("a2a", "a2a", "mcp")[n % 3]
        out.append(
            Spec(
                agent_id=f"a{n:03d}",
                skills=tuple(SKILLS[(n + k) % len(SKILLS)] for k in range(1 + n % 3)),
                tags=(TAGS[n % len(TAGS)],),
                protocol=protocol,
                transport="amqp" if protocol == "a2a" and n % 4 == 0 else "http",
                team=("red", "blue", "green")[n % 3 if n % 7 else 0],
                offline=n % 10 == 0,
            )
        )
    return out


@dataclass
class Apis:
    """The API answering from memory, the one answering from Redis, and the revision every
    answer must reflect (the last event's)."""

    memory: httpx.AsyncClient
    redis: httpx.AsyncClient
    revision: int = 0


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Apis]:
    """Clients of the test registry's API, running in-process, from memory and from Redis."""
    async with (
        serve_api(settings) as memory,
        serve_api(settings.model_copy(update={"discovery_source": "redis"})) as redis,
    ):
        yield Apis(memory, redis)


async def walk_one(
    api: httpx.AsyncClient, params: dict[str, Any], revision: int
) -> list[dict[str, Any]]:
    """Every agent of a query, page by page with limit 7 (each page full but the last)."""
    agents: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        paging = {"limit": 7, "min_revision": revision} | ({"cursor": cursor} if cursor else {})
        page = await api.get("/v1/agents", params={**params, **paging})
        assert page.status_code == 200, page.text
        body = page.json()
        agents += body["agents"]
        cursor = body["next_cursor"]
        if cursor is None:
            return agents
        assert len(body["agents"]) == 7  # only the last page may be short


async def walk(api: Apis, params: dict[str, Any]) -> list[str]:
    """Every agent id of a query from memory, after checking that the Redis path answers the
    same agents with the same JSON."""
    from_memory = await walk_one(api.memory, params, api.revision)
    assert from_memory == await walk_one(api.redis, params, api.revision), params
    return [a["agent_id"] for a in from_memory]


async def test_every_filter_and_combination_returns_exactly_the_expected_agents(
    worker: Worker,
    events: EventCollector,
    api: Apis,
) -> None:
    """300 agents; each filter, pairs of filters and paging agree with the specification."""
    agents = specs()
    now = datetime.now(UTC).isoformat()
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        for spec in agents:
            body: dict[str, Any] = {
                "agent_id": spec.agent_id,
                "instance_id": "i",
                "seq": 1,
                "ttl_s": 600,
                "card": spec.card(),
                "labels": {"team": spec.team},
                "sent_at": now,
            }
            if (endpoints := spec.endpoints()) is not None:
                body["endpoints"] = endpoints
            await raw.send(f"agent.{spec.agent_id}.register", body)
        await events.wait_until(lambda evs: len(evs) >= 300)
        gone = [s for s in agents if s.offline]
        for spec in gone:
            await raw.send(
                f"agent.{spec.agent_id}.deregister",
                {"agent_id": spec.agent_id, "instance_id": "i", "seq": 2, "sent_at": now},
            )
        await events.wait_until(lambda evs: len(evs) >= 300 + len(gone))
    api.revision = max(e.data["revision"] for e in events.events)

    def expect(keep: Any, *, status: str = "live") -> list[str]:
        chosen = [
            s for s in agents if keep(s) and (status == "all" or (status == "offline") == s.offline)
        ]
        return sorted(s.agent_id for s in chosen)

    single: list[tuple[dict[str, Any], Any]] = []
    single += [({"skill": k}, lambda s, k=k: k in s.skills) for k in SKILLS]
    single += [({"tag": t}, lambda s, t=t: t in s.tags) for t in TAGS]
    single += [({"tag": "LANGUAGE"}, lambda s: "Language" in s.tags)]  # tags ignore case
    single += [({"protocol": p}, lambda s, p=p: s.protocol == p) for p in ("a2a", "mcp", "acp")]
    single += [({"transport": t}, lambda s, t=t: s.transport == t) for t in ("http", "amqp")]
    single += [({"label": f"team:{c}"}, lambda s, c=c: s.team == c) for c in ("red", "blue")]
    single += [({"q": "FORECAST skill"}, lambda s: "forecast" in s.skills)]
    single += [({"q": "tool server"}, lambda s: s.protocol == "mcp")]
    single += [({}, lambda s: True)]
    for params, keep in single:
        assert await walk(api, params) == expect(keep), params

    # two skills at once: both must match
    for a, b in itertools.combinations(SKILLS[:4], 2):
        got = await walk(api, {"skill": [a, b]})
        assert got == expect(lambda s, a=a, b=b: a in s.skills and b in s.skills), (a, b)
    # pairs of different filters
    for (p1, k1), (p2, k2) in itertools.combinations(single[:-1:3], 2):
        if set(p1) & set(p2):
            continue
        got = await walk(api, {**p1, **p2})
        assert got == expect(lambda s, k1=k1, k2=k2: k1(s) and k2(s)), (p1, p2)

    # status: offline agents are out by default, in with all, alone with offline
    assert await walk(api, {"status": "all"}) == sorted(s.agent_id for s in agents)
    assert await walk(api, {"status": "offline"}) == sorted(s.agent_id for s in gone)
    both = {"status": "all", "skill": "plan", "transport": "http"}
    assert await walk(api, both) == expect(
        lambda s: "plan" in s.skills and s.transport == "http", status="all"
    )
    # a page's agents and the count of a walk agree
    first = (await api.memory.get("/v1/agents", params={"limit": 1000})).json()
    assert [a["agent_id"] for a in first["agents"]] == expect(lambda s: True)
    assert first["next_cursor"] is None
