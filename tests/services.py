"""Where the tests find RabbitMQ and Redis, and how they make sure both really answer.

URLs come from `AGENTROSTER_TEST_BROKER_URL` and `AGENTROSTER_TEST_REDIS_URL` (defaults: the
local services). A service that does not answer fails the test with what to start; where a
Docker engine runs, testcontainers starts the missing service instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass

import aio_pika
from redis.asyncio import Redis

BROKER_URL = os.environ.get("AGENTROSTER_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("AGENTROSTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

HOW_TO_START = {
    "rabbitmq": "start it with `rabbitmq-server -detached` or set AGENTROSTER_TEST_BROKER_URL",
    "redis": "start it with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 "
    '--save "" --appendonly no` or set AGENTROSTER_TEST_REDIS_URL',
}


@dataclass(frozen=True)
class Services:
    """URLs of the services the connected tests use."""

    broker_url: str
    redis_url: str


async def _amqp_answers(url: str) -> str | None:
    """Speak AMQP (an open port is not a ready broker); None when it answers."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), 10)
        await connection.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _redis_answers(url: str) -> str | None:
    client = Redis.from_url(url, socket_connect_timeout=5)
    try:
        await asyncio.wait_for(client.ping(), 10)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


def _docker_engine_runs() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0


def _from_testcontainers(name: str) -> str:  # pragma: no cover - needs a Docker engine
    if name == "rabbitmq":
        from testcontainers.rabbitmq import RabbitMqContainer

        rabbit = RabbitMqContainer(
            os.environ.get("AGENTROSTER_TEST_RABBITMQ_IMAGE", "rabbitmq:3.13")
        )
        rabbit.start()
        params = rabbit.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}/"
    from testcontainers.redis import RedisContainer

    redis = RedisContainer(os.environ.get("AGENTROSTER_TEST_REDIS_IMAGE", "redis:7"))
    redis.start()
    return f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"


def find_services() -> Services:
    """Probe both services; raise `RuntimeError` saying what to start when one is missing."""
    broker_url, redis_url = BROKER_URL, REDIS_URL
    problems: dict[str, str] = {}
    if (error := asyncio.run(_amqp_answers(broker_url))) is not None:
        problems["rabbitmq"] = f"RabbitMQ at {broker_url} does not answer ({error})"
    if (error := asyncio.run(_redis_answers(redis_url))) is not None:
        problems["redis"] = f"Redis at {redis_url} does not answer ({error})"
    if problems and _docker_engine_runs():
        if "rabbitmq" in problems:
            broker_url = _from_testcontainers("rabbitmq")
        if "redis" in problems:
            redis_url = _from_testcontainers("redis")
        problems = {}
    if problems:
        raise RuntimeError(
            "; ".join(f"{msg}: {HOW_TO_START[name]}" for name, msg in problems.items())
        )
    return Services(broker_url, redis_url)
