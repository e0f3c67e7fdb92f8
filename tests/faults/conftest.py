"""Fixtures of the fault suite: a private RabbitMQ vhost for the session, a private
redis-server and a registry rig per test. A missing redis-server or rabbitmqctl fails the
suite with what to install; it never skips."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.faults.harness import PrivateVhost, Rig, environment_problem, private_redis
from tests.services import Services


@pytest.fixture(scope="session")
def fault_vhost(services: Services) -> Iterator[PrivateVhost]:
    """A vhost of the suite's own on the test broker, deleted with everything in it."""
    problem = environment_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        vhost = PrivateVhost(services.broker_url).create()
    except RuntimeError as exc:
        pytest.fail(f"could not create a private vhost with rabbitmqctl: {exc}", pytrace=False)
    yield vhost
    vhost.delete()


@pytest.fixture
async def rig(fault_vhost: PrivateVhost) -> AsyncIterator[Rig]:
    """A registry of this test: its own redis-server, its own prefix in the private vhost;
    its workers, proxies and broker objects are removed afterwards."""
    async with private_redis() as server:
        registry = Rig(fault_vhost.url, server)
        try:
            yield registry
        finally:
            await registry.close()
