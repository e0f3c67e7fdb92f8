"""Concurrent calls of one script are merged into one call (store/script_batch.py), against the
real Redis: every caller gets the replies to its own items, or the error of its call, and
nobody waits forever."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from agentroster.settings import Settings
from agentroster.store.script_batch import ScriptBatch
from tests.helpers import free_port

#: One reply per item (ARGV after the first): its key, the head argument and the item;
#: refuses the item `bad` with a script error.
ECHO = """
local out = {}
for n = 2, #ARGV do
  if ARGV[n] == 'bad' then return redis.error_reply('ERR bad argument') end
  out[#out + 1] = {KEYS[1], ARGV[1], ARGV[n]}
end
return out
"""


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the shared Redis (the scripts here touch no key)."""
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


class CountedScript:
    """A registered script that records the items of each call Redis runs."""

    def __init__(self, redis: Redis) -> None:
        # a unique comment: a sha Redis has never seen
        self.script = redis.register_script(f"-- {uuid.uuid4().hex}\n{ECHO}")
        self.sha = self.script.sha
        self.calls: list[list[Any]] = []

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        self.calls.append(args[1:])
        return await self.script(keys=keys, args=args)


def echo(redis: Redis) -> tuple[ScriptBatch, CountedScript]:
    """A batch of a fresh echo script, at most 16 items per call, and its call record."""
    script = CountedScript(redis)
    return ScriptBatch(script, max_items=16), script  # type: ignore[arg-type]


def replies(key: str, head: str, *items: str) -> list[list[bytes]]:
    """What ECHO replies to these items."""
    return [[key.encode(), head.encode(), item.encode()] for item in items]


async def test_concurrent_calls_are_merged_and_each_gets_its_own_replies(redis: Redis) -> None:
    """200 calls at once, some with two items, two head arguments: each gets the replies to
    its own items, in calls of at most 16 items that never mix head arguments; the script,
    unknown to Redis at first, is loaded on the way (NOSCRIPT)."""
    batch, script = echo(redis)

    def items(n: int) -> list[str]:
        return [f"i{n}", f"j{n}"] if n % 3 == 0 else [f"i{n}"]

    def head(n: int) -> str:
        return "odd" if n % 2 else "even"

    results = await asyncio.gather(*(batch(["k"], [head(n)], items(n)) for n in range(200)))
    assert results == [replies("k", head(n), *items(n)) for n in range(200)]
    assert 1 < len(script.calls) < 200
    assert all(len(call) <= 16 for call in script.calls[1:])
    for call in script.calls:  # one head argument per call: its items' numbers share a parity
        assert len({int(item[1:]) % 2 for item in call}) == 1
    assert await redis.script_exists(script.sha) == [True]


async def test_a_lone_call_goes_at_once_and_calls_after_it_still_work(redis: Redis) -> None:
    """One call alone, then another: each answered by a call of its own (nothing waits for
    company)."""
    batch, script = echo(redis)
    assert await batch(["k"], ["h"], ["one"]) == replies("k", "h", "one")
    assert await batch(["k"], ["h"], ["two", "three"]) == replies("k", "h", "two", "three")
    assert script.calls == [["one"], ["two", "three"]]


async def test_a_script_error_fails_the_calls_merged_with_it_and_no_other(redis: Redis) -> None:
    """A call the script refuses, merged with others while one call is in flight: the merged
    calls get the error, the call in flight and the calls after them their replies."""
    batch, script = echo(redis)
    await batch(["k"], ["h"], ["load"])  # loaded: the refusal comes from the script itself
    first = asyncio.ensure_future(batch(["k"], ["h"], ["first"]))
    await asyncio.sleep(0)  # the first call is in flight: the next ones wait and are merged
    merged = [batch(["k"], ["h"], ["bad" if n == 3 else str(n)]) for n in range(8)]
    results = await asyncio.gather(*merged, return_exceptions=True)
    assert await first == replies("k", "h", "first")
    assert all(isinstance(r, ResponseError) and "bad argument" in str(r) for r in results)
    assert script.calls[-1] == [str(n) if n != 3 else "bad" for n in range(8)]
    assert await batch(["k"], ["h"], ["after"]) == replies("k", "h", "after")


async def test_an_unreachable_redis_fails_every_call_and_none_hangs() -> None:
    """No Redis at the address: every waiting call gets redis-py's connection error, and later
    calls do too (the batch is not stuck)."""
    unreachable = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        batch, _ = echo(unreachable)
        for _ in range(2):
            results = await asyncio.gather(
                *(batch(["k"], ["h"], [str(n)]) for n in range(10)), return_exceptions=True
            )
            assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await unreachable.aclose()


async def test_a_caller_that_goes_away_does_not_disturb_the_others(redis: Redis) -> None:
    """A call cancelled while it waits for the call in flight: the others still get their
    replies, and the batch goes on."""
    batch, _ = echo(redis)
    await batch(["k"], ["h"], ["load"])
    calls = [asyncio.ensure_future(batch(["k"], ["h"], [str(n)])) for n in range(6)]
    await asyncio.sleep(0)  # one turn of the loop: the first call is in flight, the rest wait
    calls[2].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for n, r in enumerate(results) if n != 2] == [
        replies("k", "h", str(n)) for n in range(6) if n != 2
    ]
    assert await batch(["k"], ["h"], ["after"]) == replies("k", "h", "after")
