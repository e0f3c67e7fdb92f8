"""`KeyVerifier` on a fake key lookup and a clock the test moves: the cache and its bounds, what
a bad key costs, rate limits, failing closed."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from agentroster.api.auth import BOOTSTRAP, RateLimited, Scope, Unauthenticated
from agentroster.api.key_verifier import FAILURE_BURST, KeyVerifier
from agentroster.store.api_keys import KeyRecord, new_token, secret_digest
from tests.unit.test_api_keys import FakeClock

BOOTSTRAP_KEY = "b" * 40


class FakeKeys:
    """Key records by id; counts lookups; can fail like a Redis that is down."""

    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.lookups = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    def add(self, scope: str = "agent", patterns: tuple[str, ...] = ("weather-*",)) -> str:
        key_id, secret, token = new_token()
        self.records[key_id] = KeyRecord(
            key_id, "team", scope, patterns, 0.0, None, None, secret_digest(secret)
        )
        return token

    def revoke(self, token: str) -> None:
        key_id = token.split("_")[1]
        old = self.records[key_id]
        self.records[key_id] = KeyRecord(
            key_id, old.principal, old.scope, old.agent_patterns, 0.0, None, 1.0, old.secret_sha256
        )

    async def get(self, key_id: str) -> KeyRecord | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise RedisConnectionError("Redis is down")
        return self.records.get(key_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys() -> FakeKeys:
    return FakeKeys()


def verifier(keys: FakeKeys, clock: FakeClock, **overrides: object) -> KeyVerifier:
    options: dict[str, object] = {
        "cache_s": 0.5,
        "rate_per_s": 1000.0,
        "burst": 1000,
        "bootstrap": BOOTSTRAP_KEY,
        "clock": clock,
    }
    options.update(overrides)
    return KeyVerifier(keys.get, **options)  # type: ignore[arg-type]  # the options are typed by KeyVerifier


async def test_a_valid_key_is_its_principal_and_read_once_per_cache_period(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """Within KEY_CACHE_S the key is checked from memory; after it, read again."""
    token = keys.add()
    check = verifier(keys, clock)
    principal = await check.verify(token, "10.0.0.1")
    assert principal.name == "team"
    assert principal.scope is Scope.AGENT
    assert principal.agent_patterns == ("weather-*",)
    assert principal.identity == "key:team"
    for _ in range(10):
        assert await check.verify(token, "10.0.0.1") == principal
    assert keys.lookups == 1
    clock.now += 0.5
    await check.verify(token, "10.0.0.1")
    assert keys.lookups == 2


async def test_a_revoked_key_is_refused_once_the_cache_period_ends(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """Revocation reaches a process within KEY_CACHE_S, with no message sent to it."""
    token = keys.add()
    check = verifier(keys, clock)
    await check.verify(token, "c")
    keys.revoke(token)
    clock.now += 0.49
    await check.verify(token, "c")  # still trusted: within the cache period
    clock.now += 0.01
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        await check.verify(token, "c")


async def test_without_a_cache_every_request_reads_the_key(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """KEY_CACHE_S=0: revocation is immediate; every check is a read."""
    token = keys.add()
    check = verifier(keys, clock, cache_s=0.0)
    await check.verify(token, "c")
    keys.revoke(token)
    with pytest.raises(Unauthenticated):
        await check.verify(token, "c")
    assert keys.lookups == 2


async def test_a_wrong_secret_for_a_known_id_is_refused(keys: FakeKeys, clock: FakeClock) -> None:
    """The id alone is public: the secret must match its digest."""
    token = keys.add()
    key_id = token.split("_")[1]
    _, other_secret, _ = new_token()
    check = verifier(keys, clock)
    await check.verify(token, "c")
    with pytest.raises(Unauthenticated):
        await check.verify(f"ar_{key_id}_{other_secret}", "c")


async def test_malformed_keys_cost_no_lookup(keys: FakeKeys, clock: FakeClock) -> None:
    """A token that is not `ar_<id>_<secret>` is refused by its shape."""
    check = verifier(keys, clock)
    for token in ("nope", "ar_x_y", "a" * 200, "ar_0123456789abcdef_" + "\x00" * 43):
        with pytest.raises(Unauthenticated, match="malformed"):
            await check.verify(token, "c")
    assert keys.lookups == 0


async def test_an_unknown_key_is_remembered_as_unknown(keys: FakeKeys, clock: FakeClock) -> None:
    """Repeating one unknown key costs one read per cache period, not one per request."""
    _, _, unknown = new_token()
    check = verifier(keys, clock)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await check.verify(unknown, f"10.0.0.{_}")
    assert keys.lookups == 1


async def test_one_client_failing_is_cut_off_before_it_costs_reads(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """After FAILURE_BURST failures a client's next uncached key is 429 without a read; a key
    already known still works from that address, and other clients are not affected."""
    good = keys.add()
    check = verifier(keys, clock)
    await check.verify(good, "attacker")
    for _ in range(FAILURE_BURST):
        with pytest.raises(Unauthenticated):
            await check.verify(new_token()[2], "attacker")
    reads = keys.lookups
    with pytest.raises(RateLimited) as limited:
        await check.verify(new_token()[2], "attacker")
    assert limited.value.status == 429
    assert limited.value.headers["Retry-After"] == "1"
    assert keys.lookups == reads
    assert (await check.verify(good, "attacker")).name == "team"  # cached: no read needed
    with pytest.raises(Unauthenticated):
        await check.verify(new_token()[2], "someone-else")  # read and refused, not 429
    clock.now += 0.5  # the good key's cache entry has expired: it is read again all the same
    assert (await check.verify(good, "attacker")).name == "team"
    assert keys.lookups == reads + 2
    clock.now += 0.5
    with pytest.raises(Unauthenticated):  # one more failure allowed a second later
        await check.verify(new_token()[2], "attacker")


async def test_the_cache_of_unknown_keys_is_bounded(keys: FakeKeys, clock: FakeClock) -> None:
    """Random ids cannot grow the process's memory, nor push known keys out."""
    good = keys.add()
    check = verifier(keys, clock, max_cached=10)
    await check.verify(good, "c")
    for i in range(50):
        with pytest.raises(Unauthenticated):
            await check.verify(new_token()[2], f"client-{i}")
    assert len(check._unknown) == 10
    assert len(check._known) == 1
    reads = keys.lookups
    await check.verify(good, "c")
    assert keys.lookups == reads


async def test_concurrent_requests_with_one_key_share_one_read(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """A burst of requests with an uncached key makes one Redis read, not one each."""
    token = keys.add()
    keys.gate = asyncio.Event()
    check = verifier(keys, clock)
    waiting = [asyncio.create_task(check.verify(token, "c")) for _ in range(20)]
    # the read is held until every request is waiting for it
    while len(check._reading) == 0 or keys.lookups == 0:
        await asyncio.wait(waiting, timeout=0)
    keys.gate.set()
    principals = await asyncio.gather(*waiting)
    assert {p.key_id for p in principals} == {token.split("_")[1]}
    assert keys.lookups == 1


async def test_a_slow_read_is_trusted_from_when_it_began(keys: FakeKeys, clock: FakeClock) -> None:
    """What a read returns may be as old as its start: the cache period counts from there, so a
    slow Redis never stretches the time a revoked key is still accepted."""
    token = keys.add()
    keys.gate = asyncio.Event()
    check = verifier(keys, clock)
    first = asyncio.create_task(check.verify(token, "c"))
    while keys.lookups == 0:  # the read has begun (at clock 1000.0)
        await asyncio.wait([first], timeout=0)
    clock.now = 1000.4
    keys.gate.set()
    await first
    keys.gate = None
    clock.now = 1000.45
    await check.verify(token, "c")
    assert keys.lookups == 1
    clock.now = 1000.5  # 0.5 s after the read began
    await check.verify(token, "c")
    assert keys.lookups == 2


async def test_redis_down_fails_closed(keys: FakeKeys, clock: FakeClock) -> None:
    """A key that must be read while Redis is down is never accepted: Redis's error goes up
    (the API answers 503 store-unavailable), and the next request reads again."""
    token = keys.add()
    check = verifier(keys, clock)
    keys.down = True
    with pytest.raises(RedisConnectionError):
        await check.verify(token, "c")
    keys.down = False
    assert (await check.verify(token, "c")).name == "team"


async def test_the_bootstrap_key_is_an_admin_without_a_record(
    keys: FakeKeys, clock: FakeClock
) -> None:
    """AGENTROSTER_BOOTSTRAP_ADMIN_KEY: principal `bootstrap`, scope admin, no lookup."""
    check = verifier(keys, clock)
    assert await check.verify(BOOTSTRAP_KEY, "c") is BOOTSTRAP
    assert BOOTSTRAP.scope is Scope.ADMIN
    assert BOOTSTRAP.name == "bootstrap"
    assert keys.lookups == 0
    without = verifier(keys, clock, bootstrap=None)
    with pytest.raises(Unauthenticated):
        await without.verify(BOOTSTRAP_KEY, "c")


async def test_a_key_over_its_rate_is_429_and_others_pass(keys: FakeKeys, clock: FakeClock) -> None:
    """The bucket is per key: the greedy one waits, another key in the same moment does not."""
    greedy, modest = keys.add(), keys.add()
    check = verifier(keys, clock, rate_per_s=2.0, burst=3)
    for _ in range(3):
        await check.verify(greedy, "c")
    with pytest.raises(RateLimited) as limited:
        await check.verify(greedy, "c")
    assert limited.value.code == "rate-limited"
    assert limited.value.headers == {"Retry-After": "1"}
    assert (await check.verify(modest, "c")).key_id == modest.split("_")[1]
    clock.now += 0.5
    await check.verify(greedy, "c")
