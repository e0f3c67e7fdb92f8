"""The examples under examples/ run as documented against a real worker."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aio_pika
import pytest

from agentroster.client import Announcement, Beacon
from agentroster.contracts.ids import broker_user
from agentroster.worker import Worker
from tests.helpers import EventCollector, ReceivedEvent, RunningProgram
from tests.integration.agents import a2a_card

#: Guards against a hang only; nothing waits this long when things work.
TIMEOUT_S = 30.0


@asynccontextmanager
async def run_example(
    repo_root: Path, worker: Worker, script: str, *args: str
) -> AsyncIterator[RunningProgram]:
    """Start `examples/<script>` against the test registry; kill it if it is still running."""
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": worker.settings.broker_url,
        "AGENTROSTER_PREFIX": worker.settings.prefix,
        "PYTHONUNBUFFERED": "1",
    }
    script_path = str(repo_root / "examples" / script)
    async with RunningProgram.run(sys.executable, script_path, *args, env=env, cwd=repo_root) as p:
        yield p


def of_agent(agent_id: str, kind: str, reason: str) -> Callable[[list[ReceivedEvent]], bool]:
    """A predicate: an event of `kind` and `reason` about `agent_id` arrived."""
    return lambda evs: any(
        e.agent_id == agent_id and e.kind == kind and e.data["reason"] == reason for e in evs
    )


async def test_long_lived_agent_joins_then_leaves_on_sigterm(
    worker: Worker, events: EventCollector, repo_root: Path
) -> None:
    async with run_example(
        repo_root, worker, "long_lived_agent.py", "--name", "Weather Bot", "--interval", "0.5"
    ) as agent:
        line = await agent.wait_for_line(lambda line: line.startswith("registered "))
        agent_id, instance_id = line.split()[1].split("/")
        assert agent_id == "weather-bot"
        await events.wait_until(of_agent(agent_id, "joined", "registered"), timeout=TIMEOUT_S)
        (joined,) = [e for e in events.of("joined") if e.agent_id == agent_id]
        assert joined.data["status"] == "live"
        assert joined.data["agent"]["tags"] == ["forecast", "weather"]
        assert joined.data["card"]["supportedInterfaces"][0]["protocolBinding"] == "JSONRPC"

        assert await agent.stop() == 0, agent.output
        assert f"deregistered {agent_id}/{instance_id}" in agent.lines
        await events.wait_until(of_agent(agent_id, "left", "deregistered"), timeout=TIMEOUT_S)
        (left,) = [e for e in events.of("left") if e.agent_id == agent_id]
        assert left.data["status"] == "offline"
        assert left.data["live_instances"] == 0
        assert left.revision > joined.revision


@pytest.mark.parametrize(
    ("idle_ttl", "kind", "reason", "status"),
    [("3600", "updated", "scaled-to-zero", "idle"), ("0", "left", "deregistered", "offline")],
    ids=["scales-to-zero", "goes-offline"],
)
async def test_keda_worker_announces_takes_a_job_and_deregisters_on_sigterm(
    worker: Worker,
    events: EventCollector,
    repo_root: Path,
    idle_ttl: str,
    kind: str,
    reason: str,
    status: str,
) -> None:
    queue_name = f"{worker.settings.prefix}.summarizer.jobs"
    connection = await aio_pika.connect(worker.settings.broker_url)
    try:
        async with run_example(
            repo_root,
            worker,
            "keda_worker.py",
            "--name",
            "Summarizer",
            "--queue",
            queue_name,
            "--ttl",
            "60",
            "--idle-ttl",
            idle_ttl,
        ) as keda:
            line = await keda.wait_for_line(lambda line: line.startswith("announced "))
            agent_id = line.split()[1].split("/")[0]
            assert agent_id == "summarizer"
            await events.wait_until(of_agent(agent_id, "joined", "registered"), timeout=TIMEOUT_S)
            (joined,) = [e for e in events.of("joined") if e.agent_id == agent_id]
            (endpoint,) = joined.data["agent"]["endpoints"]
            assert endpoint["transport"] == "amqp"
            assert endpoint["binding"] == "urn:agentroster:binding:amqp-0-9-1"
            assert endpoint["exchange"] == ""
            assert endpoint["routing_key"] == queue_name

            # a caller sends a job where the card says: the default exchange, the queue's name
            channel = await connection.channel(publisher_confirms=True)
            job_id = uuid.uuid4().hex
            await channel.default_exchange.publish(
                aio_pika.Message(b"summarise this", message_id=job_id),
                routing_key=endpoint["routing_key"],
                mandatory=True,
            )
            assert await keda.wait_for_line(lambda line: line.startswith(f"job {job_id}")) == (
                f"job {job_id}: summarise this"
            )

            assert await keda.stop() == 0, keda.output
            await events.wait_until(of_agent(agent_id, kind, reason), timeout=TIMEOUT_S)
            (last,) = [e for e in events.of(kind, reason) if e.agent_id == agent_id]
            assert last.data["status"] == status
            assert last.data["live_instances"] == 0
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
        await connection.close()


async def test_subscriber_prints_the_events_of_an_agent(worker: Worker, repo_root: Path) -> None:
    async with run_example(repo_root, worker, "subscriber.py") as subscriber:
        await subscriber.wait_for_line(lambda line: line.startswith("subscribed "))
        beacon = Beacon(
            a2a_card("Translator"),
            worker.settings.broker_url,
            prefix=worker.settings.prefix,
            interval_s=0.5,
            handle_signals=False,
        )
        async with beacon:
            line = await subscriber.wait_for_line(lambda line: line.startswith("joined "))
            assert line.startswith("joined translator status=live reason=registered revision=")
        line = await subscriber.wait_for_line(lambda line: line.startswith("left "))
        assert line.startswith("left translator status=offline reason=deregistered revision=")
        assert await subscriber.stop() == 0, subscriber.output


async def test_subscriber_drops_events_not_signed_by_the_registry_user(
    worker: Worker, repo_root: Path
) -> None:
    """An event whose validated user_id is not the expected registry user is not printed."""
    expecting = ("--registry-user", "someone-else")
    async with run_example(repo_root, worker, "subscriber.py", *expecting) as subscriber:
        await subscriber.wait_for_line(lambda line: line.startswith("subscribed "))
        settings = worker.settings
        async with Announcement(
            a2a_card("Unsigned"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ):
            line = await subscriber.wait_for_line(lambda line: line.startswith("dropped "))
        assert f"user_id={broker_user(settings.broker_url)!r}" in line
        assert "'someone-else'" in line
        assert await subscriber.stop() == 0, subscriber.output
        assert not any(line.startswith("joined ") for line in subscriber.lines)
