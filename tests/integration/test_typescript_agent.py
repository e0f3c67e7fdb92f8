"""The TypeScript agent of examples/typescript-agent against a real registry.

Its message types and AMQP names are generated from asyncapi/agent.yaml when it is built; it
runs against `agentroster up` (worker and HTTP API) under the test registry's own prefix and
must register, receive its own agent.joined, re-send its registration once per TTL, and
deregister on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from agentroster.contracts import Topology
from agentroster.contracts.ids import broker_user
from agentroster.settings import Settings
from tests.helpers import (
    EventCollector,
    ReceivedEvent,
    RunningProgram,
    queue_depth,
    registry_server,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "typescript-agent"
#: Guards against a hang only; nothing waits this long when things work.
TIMEOUT_S = 30.0
#: `npm ci` downloads the packages the first time.
BUILD_TIMEOUT_S = 600.0
#: No prompts, no telemetry, no audit or update checks (the folder's .npmrc skips install scripts).
NPM_ENV = {
    "CI": "true",
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "npm_config_audit": "false",
    "npm_config_fund": "false",
    "npm_config_update_notifier": "false",
}


def npm(*args: str) -> None:
    """Run npm in the example's folder; fail the test with its output if it fails."""
    try:
        subprocess.run(
            ["npm", *args],
            cwd=EXAMPLE,
            env={**os.environ, **NPM_ENV},
            capture_output=True,
            text=True,
            check=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"npm {' '.join(args)} failed:\n{exc.stdout}\n{exc.stderr}", pytrace=False)


@pytest.fixture(scope="module")
def built_agent() -> Path:
    """`npm ci` (once per package-lock.json) and `npm run build`: dist/agent.js."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: install Node.js 20 or later with npm "
            "(e.g. `apt-get install nodejs npm`, or from https://nodejs.org)",
            pytrace=False,
        )
    lock = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = EXAMPLE / "node_modules" / f".installed-{lock}"  # npm ci empties node_modules
    if not stamp.exists():
        npm("ci")
        stamp.touch()
    npm("run", "build")
    return EXAMPLE / "dist" / "agent.js"


class NodeAgent(RunningProgram):
    """`node dist/agent.js` as a subprocess; its stdout read as JSON lines."""

    timeout_s = TIMEOUT_S

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read output until a JSON line satisfies `predicate`; return it."""
        line = await self.wait_for_line(
            lambda line: line.startswith("{") and predicate(json.loads(line))
        )
        record: dict[str, Any] = json.loads(line)
        return record


@contextlib.asynccontextmanager
async def run_agent(script: Path, settings: Settings, agent_id: str) -> AsyncIterator[NodeAgent]:
    """Start the TypeScript agent against the test registry; kill it if it is still running."""
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": settings.broker_url,
        "AGENTROSTER_PREFIX": settings.prefix,
        "AGENT_ID": agent_id,
        "AGENT_INTERVAL_S": "0.2",
    }
    async with NodeAgent.run("node", str(script), env=env) as agent:
        yield agent


async def until(
    read: Callable[[], Awaitable[dict[str, Any]]], condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Read until `condition` holds (polling the API: it has no change notification)."""
    last: dict[str, Any] = {}
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while not condition(last := await read()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"the condition never held; last read: {last}") from None
    return last


@contextlib.asynccontextmanager
async def commands_tap(settings: Settings, agent_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    """A copy of every command `agent_id` publishes: its AMQP properties and body, in order."""
    sent: list[dict[str, Any]] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process():
            sent.append(
                {
                    "type": message.type,
                    "content_type": message.content_type,
                    "delivery_mode": message.delivery_mode,
                    "message_id": message.message_id,
                    "timestamp": message.timestamp,
                    "user_id": message.user_id,
                    "body": orjson.loads(message.body),
                }
            )

    connection = await aio_pika.connect(settings.broker_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(  # as the worker declares it
            Topology(settings.prefix).commands_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key=f"agent.{agent_id}.*")  # its every command
        await queue.consume(on_message)
        yield sent
    finally:
        await connection.close()


async def republish(settings: Settings, event: ReceivedEvent, event_id: str) -> None:
    """Publish `event` again to the events exchange, as a relay re-publishing it would, under
    the CloudEvents id `event_id`."""
    connection = await aio_pika.connect(settings.broker_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(Topology(settings.prefix).events_exchange)
        message = aio_pika.Message(
            orjson.dumps(event.data),
            headers={**event.headers, "cloudEvents_id": event_id},
            message_id=event_id,
            type=event.type,
            content_type="application/json",
        )
        await exchange.publish(message, routing_key=event.routing_key)
    finally:
        await connection.close()


def renewed(instance: dict[str, Any]) -> bool:
    """The instance's last applied renewal is later than its registration."""
    seen = datetime.fromisoformat(instance["last_seen"])
    return seen > datetime.fromisoformat(instance["first_seen"])


async def test_typescript_agent_registers_receives_its_events_and_deregisters(
    built_agent: Path, settings: Settings, events: EventCollector
) -> None:
    agent_id = f"ts-agent-{uuid.uuid4().hex[:8]}"
    async with (
        registry_server(settings) as server,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT_S) as http,
        run_agent(built_agent, settings, agent_id) as agent,
    ):

        async def detail() -> dict[str, Any]:
            response = await http.get(f"/v1/agents/{agent_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        registered = await agent.wait_for(lambda line: line.get("action") == "registered")
        instance_id = registered["instance_id"]

        # (b) the agent received, through its own queue, the agent.joined of its registration
        printed = await agent.wait_for(
            lambda line: line.get("event") == "agent.joined" and line["agent_id"] == agent_id
        )
        assert printed["status"] == "live"
        assert printed["reason"] == "registered"
        await events.wait_until(
            lambda evs: any(e.agent_id == agent_id for e in evs), timeout=TIMEOUT_S
        )
        (joined,) = [e for e in events.of("joined") if e.agent_id == agent_id]
        assert printed["id"] == joined.headers["cloudEvents_id"] == joined.message_id
        assert printed["revision"] == joined.revision
        # at-least-once delivery: the same event published again is dropped by its id; a
        # marker event with a new id, published after it, shows the agent read past it
        marker = f"marker-{uuid.uuid4().hex[:8]}"
        await republish(settings, joined, joined.headers["cloudEvents_id"])
        await republish(settings, joined, marker)
        await agent.wait_for(lambda line: line.get("id") == marker)
        ids = [json.loads(line).get("id") for line in agent.lines if line.startswith("{")]
        assert ids.count(joined.headers["cloudEvents_id"]) == 1

        # (a) the registry lists it as the agent sent it
        agent_detail = await detail()
        assert agent_detail["status"] == "live"
        assert [i["instance_id"] for i in agent_detail["instances"]] == [instance_id]
        assert agent_detail["card_digest"] == registered["card_digest"]  # same digest algorithm
        assert agent_detail["agent"]["name"] == "TypeScript Echo"
        assert agent_detail["agent"]["labels"] == {"language": "typescript"}
        assert agent_detail["agent"]["endpoints"][0]["url"] == "http://127.0.0.1:8081/a2a"
        # its lease is renewed: the instance's last renewal moves past its registration
        await until(detail, lambda d: renewed(d["instances"][0]))

        # (c) SIGTERM: it deregisters and exits 0; everyone sees agent.left
        assert await agent.stop() == 0, agent.output
        assert {"action": "deregistered", "agent_id": agent_id, "instance_id": instance_id} in [
            json.loads(line) for line in agent.lines if line.startswith("{")
        ]
        await events.wait_until(
            lambda evs: any(
                e.agent_id == agent_id and e.kind == "left" and e.data["reason"] == "deregistered"
                for e in evs
            ),
            timeout=TIMEOUT_S,
        )
        assert (await detail())["status"] == "offline"

    # every command it sent was valid: none was dead-lettered
    dead_letters = Topology(settings.prefix).dead_letter_queue
    assert await queue_depth(settings.broker_url, dead_letters) == 0


async def test_typescript_agent_resends_its_registration_once_per_ttl(
    built_agent: Path, settings: Settings, cleanup: None
) -> None:
    """As the Python Beacon: every `ttl_s // interval_s` beats (3 by default) is a `register`.

    So after Redis lost the registry's data, every agent registers again within the recovery
    window of 2 TTLs. The tap also sees what the document says of each command's properties.
    """
    agent_id = f"ts-agent-{uuid.uuid4().hex[:8]}"
    async with (
        commands_tap(settings, agent_id) as sent,
        registry_server(settings),
        run_agent(built_agent, settings, agent_id) as agent,
    ):

        async def until_sent(condition: Callable[[list[dict[str, Any]]], bool]) -> None:
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    while not condition(sent):
                        await asyncio.sleep(0.05)
            except TimeoutError:
                raise AssertionError(f"sent {sent}\n{agent.output}") from None

        await agent.wait_for(lambda line: line.get("action") == "registered")
        await until_sent(lambda s: len(s) >= 8)  # the registration and 7 beats, 0.2 s apart
        assert await agent.stop() == 0, agent.output
        await until_sent(lambda s: s[-1]["type"] == "deregister")

    kinds = [(command["type"], command["body"]["seq"]) for command in sent]
    assert kinds[0] == ("register", 1)
    assert kinds[-1][0] == "deregister"
    for kind, seq in kinds[1:-1]:  # beat n has seq n + 1
        assert kind == ("register" if (seq - 1) % 3 == 0 else "heartbeat"), kinds
    for command in sent:
        assert command["content_type"] == "application/json"
        assert command["delivery_mode"] == aio_pika.DeliveryMode.PERSISTENT
        assert command["message_id"]
        assert command["timestamp"] is not None
        assert command["user_id"] == broker_user(settings.broker_url)  # its validated identity
        assert command["body"]["agent_id"] == agent_id
