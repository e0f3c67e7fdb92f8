"""Fixtures of the integration suite that drive the store without a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore


@pytest.fixture
async def store(settings: Settings, cleanup: None) -> AsyncIterator[RedisStore]:
    """The store of the test registry, without a worker: the test drives the reaper."""
    redis = Redis.from_url(settings.redis_url)
    yield RedisStore(redis, settings.prefix)
    await redis.aclose()
