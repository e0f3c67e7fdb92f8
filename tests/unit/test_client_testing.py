"""`agentroster.client.testing`: users test their agents' registration and shutdown without
RabbitMQ (a `FakeRegistry` a Beacon is pointed at by URL)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentroster import Beacon, RegistryNotDeclared, announce
from agentroster.client.testing import FakeRegistry, InvalidCommand
from agentroster.contracts import Heartbeat

CARD: dict[str, Any] = {
    "name": "Weather Bot",
    "description": "Forecasts.",
    "url": "https://weather.example/a2a",
    "version": "1.0.0",
}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_beacon_registers_and_deregisters_on_exit() -> None:
    """Enter: one live agent with the card; exit: none, deregistered with `shutdown`."""
    async with FakeRegistry() as registry:
        async with Beacon(CARD, registry.broker_url, handle_signals=False) as beacon:
            assert registry.live_agents() == {"weather-bot"}
            assert registry.live_instances("weather-bot") == {beacon.instance_id}
            assert registry.card("weather-bot") == CARD
        assert registry.live_agents() == set()
        assert registry.deregistrations("weather-bot") == ["shutdown"]
        assert [c.kind for c in registry.commands] == ["register", "deregister"]


async def test_the_environment_points_unchanged_agent_code_at_the_fake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Agent code that reads AGENTROSTER_BROKER_URL / _PREFIX needs no change to be tested."""
    async with FakeRegistry(prefix="staging") as registry:
        monkeypatch.setenv("AGENTROSTER_BROKER_URL", registry.broker_url)
        monkeypatch.setenv("AGENTROSTER_PREFIX", registry.prefix)
        announcement = await announce(CARD, ttl_s=60)
        assert registry.live_agents() == {"weather-bot"}
        await announcement.close()
        assert registry.live_agents() == set()


async def test_heartbeats_are_recorded_and_renew_the_lease() -> None:
    """A Beacon's beats arrive as heartbeats (every 3rd as a full register) and renew."""
    async with FakeRegistry() as registry:
        async with Beacon(CARD, registry.broker_url, interval_s=0.01, handle_signals=False):
            async with asyncio.timeout(10):
                await registry.wait_for(lambda r: len(r.of_kind("heartbeat")) >= 2)
            kinds = [c.kind for c in registry.commands]
        assert kinds[0] == "register"
        assert "heartbeat" in kinds


async def test_a_lease_expires_after_its_ttl_on_the_fakes_clock() -> None:
    """No renewal for ttl_s (bounded to at least 5 s, as the registry does): not live."""
    clock = Clock()
    async with FakeRegistry(clock=clock) as registry:
        announcement = await announce(CARD, registry.broker_url, ttl_s=1)  # bounded up to 5 s
        clock.now += 4.9
        assert registry.live_agents() == {"weather-bot"}
        clock.now += 0.2
        assert registry.live_agents() == set()
        await announcement.renew()  # a heartbeat does not resurrect an expired lease
        assert registry.live_agents() == set()
        await announcement.register()  # a registration does
        assert registry.live_agents() == {"weather-bot"}


async def test_without_an_open_registry_the_agent_gets_registry_not_declared() -> None:
    """A closed fake, or another prefix, is what a missing commands exchange is."""
    registry = FakeRegistry()
    with pytest.raises(RegistryNotDeclared):
        await announce(CARD, registry.broker_url, ttl_s=60)
    async with registry:
        with pytest.raises(RegistryNotDeclared):
            await announce(CARD, registry.broker_url, ttl_s=60, prefix="other")


async def test_an_unreachable_broker_fails_the_publish() -> None:
    """`unreachable` makes publishes fail, so an agent's handling of outages can be tested."""
    async with FakeRegistry() as registry:
        registry.unreachable = True
        with pytest.raises(ConnectionError):
            await announce(CARD, registry.broker_url, ttl_s=60)
        assert registry.commands == []


async def test_a_command_the_registry_would_dead_letter_raises() -> None:
    """A command that breaks the wire contract fails loudly in the test, with the reason."""
    async with FakeRegistry() as registry:
        body = b'{"agent_id": "Not An Id", "instance_id": "i", "seq": 1}'
        with pytest.raises(InvalidCommand) as raised:
            await registry.receive("heartbeat", "agent.x.heartbeat", body, None)
        assert raised.value.reason == "invalid-schema"
        heartbeat = Heartbeat(
            agent_id="weather-bot",
            instance_id="i-1",
            seq=1,
            ttl_s=30,
            card_digest="0" * 64,
            sent_at=datetime.now(UTC),
        )
        with pytest.raises(InvalidCommand) as raised:
            await registry.receive(
                "heartbeat", "agent.other.heartbeat", heartbeat.model_dump_json().encode(), None
            )
        assert raised.value.reason == "agent-id-mismatch"


async def test_a_replayed_seq_is_ignored_as_the_registry_ignores_it() -> None:
    """A deregister followed by a replay of the earlier register does not resurrect."""
    async with FakeRegistry() as registry:
        announcement = await announce(CARD, registry.broker_url, ttl_s=60)
        (register,) = registry.of_kind("register")
        await announcement.close()
        body = register.command.model_dump_json(exclude_none=True).encode()
        await registry.receive("register", register.routing_key, body, None)
        assert registry.live_agents() == set()


def readme_example(repo_root: Path) -> str:
    """The README's FakeRegistry example (the python block under "Testing your agent")."""
    readme = (repo_root / "README.md").read_text()
    section = readme.split("### Testing your agent", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


async def test_the_readme_example_runs_and_passes(repo_root: Path) -> None:
    """The example test in the README is real: it runs here and passes."""
    namespace: dict[str, Any] = {}
    exec(compile(readme_example(repo_root), "README.md", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert tests
    for test in tests:
        await test()
