"""Redis lost its data: detected by the missing epoch, a recovery window without expiries,
joins that say `recovered`, and revisions that never go back."""

from __future__ import annotations

import asyncio

from agentroster.client import Beacon
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from agentroster.worker import create_worker
from tests.helpers import EventCollector, cleanup_redis, serve_api
from tests.integration.agents import a2a_card
from tests.integration.leases import make_due, outbox_events, register


async def lose_data(settings: Settings) -> None:
    """What a Redis restart without persistence does to this registry: every key gone."""
    await cleanup_redis(settings.redis_url, settings.prefix)


async def test_a_data_loss_opens_a_recovery_window(settings: Settings, store: RedisStore) -> None:
    """The epoch is gone: joins say `recovered`, revisions go on above the old ones, due leases
    are held for the window (2 x the longest TTL), then expire as usual."""
    await store.apply([register("before", ttl_ms=20_000)])
    await store.reap()  # the worker learns the epoch and the longest TTL
    old_epoch, old_revision = store.epoch, int(await store.redis.get(store.keys.revision) or 0)

    await lose_data(settings)
    result = await store.apply([register("back", ttl_ms=10_000)])

    assert result.codes == [0]
    (joined,) = await outbox_events(store)
    assert (joined.kind, joined.reason, joined.agent_id) == ("joined", "recovered", "back")
    assert joined.revision > old_revision
    assert joined.epoch != old_epoch
    window = await store.redis.pttl(store.keys.recovering)
    assert 20_000 < window <= 40_000  # 2 x the longest TTL the worker knew (20 s)

    await make_due(store, ["back"])
    held = await store.reap()
    assert (held.leases_expired, held.held, held.events) == (0, 1, 0)
    assert held.recovery_ms_left > 0
    assert held.epoch == joined.epoch

    await store.redis.delete(store.keys.recovering)  # the window ends
    await make_due(store, ["back"])
    expired = await store.reap()
    assert (expired.leases_expired, expired.held, expired.recovery_ms_left) == (1, 0, 0)
    left = (await outbox_events(store, joined.revision))[0]
    assert (left.kind, left.reason) == ("left", "expired")


async def test_a_loss_is_seen_by_a_worker_that_has_only_written(
    settings: Settings, store: RedisStore
) -> None:
    """A worker started on an empty registry whose reaper has not swept yet (held by a
    backlog, say) learns the epoch from its own writes, so it still notices the loss."""
    await store.observe()  # on start: no epoch yet
    await store.apply([register("first")])
    await lose_data(settings)
    await store.apply([register("back")])
    (joined,) = await outbox_events(store)
    assert (joined.kind, joined.reason) == ("joined", "recovered")
    assert await store.redis.exists(store.keys.recovering)


async def test_a_first_start_is_not_a_data_loss(store: RedisStore) -> None:
    """A store that never saw an epoch writes the first one: an ordinary join, no window."""
    await store.apply([register("first")])
    (joined,) = await outbox_events(store)
    assert (joined.kind, joined.reason) == ("joined", "registered")
    assert not await store.redis.exists(store.keys.recovering)


async def test_a_worker_started_after_the_epoch_notices_its_loss(
    settings: Settings, store: RedisStore
) -> None:
    """A worker reads the epoch on start, so a loss before its first sweep is still seen."""
    await store.apply([register("early")])
    worker = create_worker(settings)
    await worker.store.observe()
    await lose_data(settings)
    await worker.store.apply([register("early", seq=2)])
    await worker.redis.aclose()
    (joined,) = await outbox_events(store)
    assert joined.reason == "recovered"


async def test_beacons_come_back_after_a_data_loss_without_a_false_left(
    settings: Settings, events: EventCollector
) -> None:
    """End to end: Redis loses the registry while Beacons heartbeat; each is back within
    2 x TTL by its periodic full registration, as `recovered`, and nobody left."""
    beacons = [
        Beacon(
            a2a_card(f"survivor-{n}"),
            settings.broker_url,
            prefix=settings.prefix,
            interval_s=0.5,
            ttl_s=1.5,
            handle_signals=False,
        )
        for n in range(3)
    ]
    async with create_worker(settings) as worker:
        for beacon in beacons:
            await beacon.open()
        await events.wait_until(lambda _: len(events.of("joined")) == 3)
        await worker.reaper.sweep()  # the worker has seen the epoch
        await lose_data(settings)
        await events.wait_until(lambda _: len(events.of("joined", "recovered")) == 3, timeout=10)
        for beacon in beacons:
            await beacon.close()
        await events.wait_until(lambda _: len(events.of("left")) == 3)
    assert [e.data["reason"] for e in events.of("left")] == ["deregistered"] * 3


async def test_a_follower_from_before_the_loss_is_told_to_list_again(
    settings: Settings, store: RedisStore
) -> None:
    """GET /v1/events after a revision from before the loss: 410, never a silent gap."""
    await store.apply([register("followed")])
    await store.reap()
    before = int(await store.redis.get(store.keys.revision) or 0)
    await lose_data(settings)
    await store.apply([register("followed", seq=2)])
    # without the jump the stream would open and wait: the timeout turns that into a failure
    async with serve_api(settings) as api, asyncio.timeout(10):
        response = await api.get("/v1/events", params={"since": before})
    assert response.status_code == 410, response.text
    assert response.json()["error"]["code"] == "events-expired"
