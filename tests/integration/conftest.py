"""Fixtures of the integration suite that drive the store without a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from agentroster.cli import app
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from tests.integration.broker_users import MANAGEMENT_URL, Admin
from tests.services import Services


@pytest.fixture
async def store(settings: Settings, cleanup: None) -> AsyncIterator[RedisStore]:
    """The store of the test registry, without a worker: the test drives the reaper."""
    redis = Redis.from_url(settings.redis_url)
    yield RedisStore(redis, settings.prefix)
    await redis.aclose()


@pytest.fixture
async def admin(services: Services) -> AsyncIterator[Admin]:
    """The CLI against the management API (probed first); every user it made is revoked."""
    try:
        async with httpx.AsyncClient() as http:
            await http.get(f"{MANAGEMENT_URL}/api/overview", timeout=10)
    except httpx.TransportError as exc:
        pytest.fail(
            f"the management API at {MANAGEMENT_URL} does not answer ({exc}): run "
            "`rabbitmq-plugins enable rabbitmq_management` or set AGENTROSTER_TEST_MANAGEMENT_URL",
            pytrace=False,
        )
    made: list[str] = []
    yield Admin(services, made)
    for name in made:
        CliRunner().invoke(app, ["broker", "revoke", name, *Admin(services, []).credentials])
