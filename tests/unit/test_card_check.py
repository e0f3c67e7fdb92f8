"""Card verification without a network or Redis: the match rule, which registrations are
queued (mode, dedupe, a full queue drops with a metric), the `verified` filter in memory, and
the wire form of `Register.verify`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agentroster.api.read_model.index import AgentIndex, entry_from_record, record_from_event
from agentroster.contracts import Register, agent_view
from agentroster.contracts.commands import command_json
from agentroster.registry.card_match import card_matches, card_urls, normalise_url
from agentroster.registry.prepare import Limits, Prepared, prepare
from agentroster.registry.terms import Filters
from agentroster.store.outbox import OutboxEvent
from agentroster.store.redis_store import RedisStore, VerifyResult
from agentroster.worker.card_check import CardVerifier, check_for
from agentroster.worker.card_fetch import CardFetcher, FetchPolicy, Result
from agentroster.worker.metrics import WorkerMetrics


def v10(name: str, url: str) -> dict[str, Any]:
    """An A2A v1.0 card."""
    return {
        "name": name,
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC"}],
    }


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTP://Agent.Example:80/a2a/", "http://agent.example/a2a"),
        ("https://agent.example:443", "https://agent.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x/"),
    ],
)
def test_urls_normalised(a: str, b: str) -> None:
    """Scheme and host case, default ports and a trailing slash do not matter."""
    assert normalise_url(a) == normalise_url(b)


def test_match_rule() -> None:
    """Same name and one common endpoint URL, across v0.3 and v1.0 shapes; nothing else."""
    registered = card_urls(v10("Weather", "https://w.example/a2a"))
    assert card_matches("Weather", registered, v10("Weather", "https://w.example/a2a/"))
    assert card_matches("Weather", registered, {"name": "Weather", "url": "https://w.example/a2a"})
    assert not card_matches("Weather", registered, v10("Other", "https://w.example/a2a"))
    assert not card_matches("Weather", registered, v10("Weather", "https://evil.example/a2a"))
    assert not card_matches("Weather", registered, [v10("Weather", "https://w.example/a2a")])
    assert not card_matches("Weather", registered, {"name": "Weather", "url": 5})
    assert not card_matches("", frozenset(), {"name": ""})


def registration(agent_id: str = "weather", *, verify: bool = False, **card: Any) -> Prepared:
    """A prepared registration of an A2A card at https://<agent_id>.example/a2a."""
    body = Register(
        agent_id=agent_id,
        instance_id="i-1",
        seq=1,
        ttl_s=30,
        card=v10("Weather", f"https://{agent_id}.example/a2a") | card,
        verify=verify,
        sent_at=datetime.now(UTC),
    )
    return prepare(f"agent.{agent_id}.register", command_json(body), None, Limits())


class FakeStore:
    """What the verifier asks of the store, recorded."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, bool]] = []

    async def needs_check(self, agent_id: str, state_digest: str) -> bool:
        return (agent_id, state_digest) not in {(a, d) for a, d, _ in self.recorded}

    async def record_verification(
        self, agent_id: str, state_digest: str, verified: bool
    ) -> VerifyResult:
        self.recorded.append((agent_id, state_digest, verified))
        return VerifyResult(recorded=True, changed=True)


class FakeFetcher(CardFetcher):
    """Answers `result` for every check, after `gate` opens."""

    def __init__(self, result: Result, gate: asyncio.Event | None = None) -> None:
        super().__init__(FetchPolicy())
        self.result = result
        self.gate = gate
        self.checked: list[str] = []

    async def check(self, base_url: str, name: str, registered_urls: frozenset[str]) -> Result:
        self.checked.append(base_url)
        if self.gate is not None:
            await self.gate.wait()
        return self.result


def verifier(mode: str, fetcher: FakeFetcher, **options: Any) -> tuple[CardVerifier, FakeStore]:
    store = FakeStore()
    made = CardVerifier(store, fetcher, WorkerMetrics(), mode=mode, **options)  # type: ignore[arg-type]
    return made, store


def count(made: CardVerifier, result: str) -> float:
    """The verifications metric for one result."""
    value = made._metrics.registry.get_sample_value(
        "agentroster_card_verifications_total", {"result": result}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("mode", "verify", "checked"),
    [
        ("requested", True, True),
        ("requested", False, False),
        ("all", False, True),
        ("off", True, False),
    ],
)
async def test_which_registrations_are_checked(mode: str, verify: bool, checked: bool) -> None:
    """`requested` checks those that ask, `all` every one, `off` none."""
    fetcher = FakeFetcher(Result.VERIFIED)
    made, store = verifier(mode, fetcher)
    made.start()
    try:
        made.offer(registration(verify=verify))
        await made.idle()
    finally:
        await made.stop()
    assert bool(store.recorded) is checked
    if checked:
        assert fetcher.checked == ["https://weather.example/a2a"]
        assert store.recorded[0][2] is True
        assert count(made, "verified") == 1


async def test_a_full_queue_drops_with_a_metric() -> None:
    """Past the queue's bound a check is dropped and counted; the same registration offered
    twice while pending is queued once."""
    gate = asyncio.Event()
    fetcher = FakeFetcher(Result.MISMATCH, gate)
    made, store = verifier("all", fetcher, queue_size=1, concurrency=1)
    made.start()
    try:
        first = registration("a1")
        made.offer(first)
        await asyncio.sleep(0)  # let the one task take it: the queue is empty again
        made.offer(first)  # pending: not queued twice
        made.offer(registration("a2"))  # fills the queue
        made.offer(registration("a3"))  # dropped
        assert count(made, "dropped") == 1
        gate.set()
        await made.idle()
    finally:
        await made.stop()
    assert [agent for agent, _, _ in store.recorded] == ["a1", "a2"]
    assert {verified for _, _, verified in store.recorded} == {False}


async def test_one_agent_holds_one_place_in_the_queue() -> None:
    """An agent registering 50 new cards while its check waits holds one place, and its newest
    card is the one checked: another agent still finds room (before the shared queue, the 50
    filled it and the other's check was dropped)."""
    gate = asyncio.Event()
    fetcher = FakeFetcher(Result.VERIFIED, gate)
    made, store = verifier("all", fetcher, queue_size=2, concurrency=1)
    made.start()
    try:
        made.offer(registration("first"))
        await asyncio.sleep(0)  # the one task takes it and waits at the gate: the queue is empty
        greedy = [registration("greedy", description=f"card {n}") for n in range(50)]
        for command in greedy:
            made.offer(command)
        made.offer(registration("other"))
        made.offer(registration("late"))  # dropped: two agents wait
        assert count(made, "dropped") == 1
        gate.set()
        await made.idle()
    finally:
        await made.stop()
    assert [(agent, digest) for agent, digest, _ in store.recorded] == [
        ("first", registration("first").state_digest),
        ("greedy", greedy[-1].state_digest),
        ("other", registration("other").state_digest),
    ]


def test_no_http_endpoint_has_no_base_url() -> None:
    """A card reached only over AMQP has nothing to fetch."""
    amqp = registration(
        supportedInterfaces=[
            {"url": "amqp://broker/?queue=w", "protocolBinding": "urn:agentroster:binding:x"}
        ]
    )
    assert check_for(amqp).base_url is None
    assert check_for(registration()).urls == {"https://weather.example/a2a"}


def test_verify_is_sent_only_when_asked() -> None:
    """An older registry refuses unknown fields: `verify` is on the wire only when true."""
    assert b'"verify"' not in command_json(
        Register(agent_id="a", instance_id="i", seq=1, ttl_s=5, card={}, sent_at=datetime.now(UTC))
    )
    assert registration(verify=True).verify is True


def test_memory_filter_follows_the_event() -> None:
    """An event carrying `verified` puts the agent under the filter's term; without it, under
    neither value."""
    view = orjson.dumps(
        agent_view(v10("Weather", "https://w.example/a2a"), None, None).model_dump(mode="json")
    )
    index = AgentIndex()

    def put(agent_id: str, revision: int, verified: bool | None) -> None:
        event = OutboxEvent(
            revision=revision,
            kind="updated",
            agent_id=agent_id,
            status="live",
            live_instances=1,
            reason="verified",
            time_ms=0,
            epoch="e",
            view=view,
            card=None,
            verified=verified,
        )
        index.put(entry_from_record(record_from_event(event)))

    put("a", 1, True)
    put("b", 2, False)
    put("c", 3, None)

    def listed(verified: bool | None) -> list[str]:
        page = index.page("live", 10, None, Filters(verified=verified), 1000)
        return [a["agent_id"] for a in orjson.loads(orjson.dumps(page.agents))]

    assert (listed(True), listed(False), listed(None)) == (["a"], ["b"], ["a", "b", "c"])
    put("a", 4, None)  # a new card: unknown again
    assert listed(True) == []
    assert orjson.loads(orjson.dumps(index.entries["b"].json))["verified"] is False


def test_store_is_the_seam() -> None:
    """The verifier talks to the store through the two methods the fake stands in for."""
    assert hasattr(RedisStore, "needs_check")
    assert hasattr(RedisStore, "record_verification")
