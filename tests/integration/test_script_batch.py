"""Concurrent calls of one script share round trips (store/script_batch.py), against the real
Redis: every caller gets its own reply or its own error, and nobody waits forever."""

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

#: Echoes its key and argument; refuses the argument `bad` with a script error.
ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('ERR bad argument') end
return {KEYS[1], ARGV[1]}
"""


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the shared Redis (the scripts here touch no key)."""
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def echo(redis: Redis) -> ScriptBatch:
    """A batch of a script Redis has never seen (a unique comment: its own sha)."""
    return ScriptBatch(redis.register_script(f"-- {uuid.uuid4().hex}\n{ECHO}"), max_batch=16)


class PipelineCount:
    """Counts the pipelines a client executes."""

    def __init__(self, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.executed = 0
        make = redis.pipeline

        def counted(*args: Any, **kwargs: Any) -> Any:
            pipe = make(*args, **kwargs)
            execute = pipe.execute

            async def execute_counted(*a: Any, **k: Any) -> Any:
                self.executed += 1
                return await execute(*a, **k)

            monkeypatch.setattr(pipe, "execute", execute_counted)
            return pipe

        monkeypatch.setattr(redis, "pipeline", counted)


async def test_concurrent_calls_get_their_own_replies_in_fewer_round_trips(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 calls at once: each gets the reply to its own arguments, in pipelines of at most
    16 calls; the script, unknown to Redis at first, is loaded on the way (NOSCRIPT)."""
    batch = echo(redis)
    count = PipelineCount(redis, monkeypatch)
    replies = await asyncio.gather(*(batch([f"k{n}"], [f"a{n}"]) for n in range(200)))
    assert replies == [[f"k{n}".encode(), f"a{n}".encode()] for n in range(200)]
    assert 200 / 16 <= count.executed < 200
    assert await redis.script_exists(batch.script.sha) == [True]


async def test_a_lone_call_goes_at_once_and_calls_after_it_still_work(redis: Redis) -> None:
    """One call alone, then another: each answered (nothing waits for company)."""
    batch = echo(redis)
    assert await batch(["k"], ["one"]) == [b"k", b"one"]
    assert await batch(["k"], ["two"]) == [b"k", b"two"]


async def test_a_script_error_is_its_callers_alone(redis: Redis) -> None:
    """One call the script refuses, among valid ones: it gets the error, the others their
    replies."""
    batch = echo(redis)
    await batch(["k"], ["load"])  # loaded: the refusal comes from the script itself
    results = await asyncio.gather(
        *(batch(["k"], ["bad" if n == 3 else str(n)]) for n in range(8)), return_exceptions=True
    )
    assert isinstance(results[3], ResponseError)
    assert "bad argument" in str(results[3])
    assert [r for n, r in enumerate(results) if n != 3] == [
        [b"k", str(n).encode()] for n in range(8) if n != 3
    ]


async def test_an_unreachable_redis_fails_every_call_and_none_hangs() -> None:
    """No Redis at the address: every waiting call gets redis-py's connection error, and later
    calls do too (the batch is not stuck)."""
    unreachable = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        batch = echo(unreachable)
        for _ in range(2):
            results = await asyncio.gather(
                *(batch(["k"], [str(n)]) for n in range(10)), return_exceptions=True
            )
            assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await unreachable.aclose()


async def test_a_caller_that_goes_away_does_not_disturb_the_others(redis: Redis) -> None:
    """A call cancelled while it waits for the call in flight: the others still get their
    replies, and the batch goes on."""
    batch = echo(redis)
    await batch(["k"], ["load"])
    calls = [asyncio.ensure_future(batch(["k"], [str(n)])) for n in range(6)]
    await asyncio.sleep(0)  # one turn of the loop: the first call is in flight, the rest wait
    calls[2].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for n, r in enumerate(results) if n != 2] == [
        [b"k", str(n).encode()] for n in range(6) if n != 2
    ]
    assert await batch(["k"], ["after"]) == [b"k", b"after"]
