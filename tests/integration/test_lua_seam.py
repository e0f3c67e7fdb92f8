"""The generated preludes, run in Redis: every script compiles, and what a script sees by
name is what Python meant (tests/unit/test_lua_seam.py reads the scripts' text)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from agentroster.store.keys import Keys
from agentroster.store.scripts import APPLY, QUERY, SPECS, SUMMARY_FIELDS, Code
from tests.services import Services


async def test_every_script_compiles(services: Services) -> None:
    """Redis accepts every script with its prelude (SCRIPT LOAD compiles without running)."""
    redis = Redis.from_url(services.redis_url)
    try:
        for spec in SPECS:
            assert await redis.script_load(spec.source())
    finally:
        await redis.aclose()


async def test_prelude_names_what_python_passes(services: Services, prefix: str) -> None:
    """Run APPLY's and QUERY's preludes with arguments packed by name: the script sees each
    argument, record field, code, key and the summary fields where Python put them."""
    redis = Redis.from_url(services.redis_url)
    keys = Keys(prefix)
    common: dict[str, Any] = {"P": keys.base, "new_epoch": "e", "seen_epoch": "", "recovery_ms": 7}
    common |= {"flap_window": 8, "flap_max": 9}
    args = common | {"retention": 10, "max_agents": 11, "max_instances": 12, "n": 1}
    record = [f"value-of-{name}" for name in APPLY.record]
    probe = (
        "return {recovery_ms, retention, n, ARGV[RECORDS + F_STATE_DIGEST], "
        "ARGV[RECORDS + STRIDE], STUCK, FORBIDDEN, K_REVISION, K_INSTANCE('a', 'i'), "
        "REPLY({events = 1, epoch = 'x'}, {'tail'})}"
    )
    try:
        argv = [args[a.name] for a in APPLY.arguments] + record
        got = await redis.eval(APPLY.prelude() + probe, 1, keys.revision, *argv)
        assert got == [
            7,
            10,
            1,
            b"value-of-state_digest",
            f"value-of-{APPLY.record[-1]}".encode(),
            Code.STUCK,
            Code.FORBIDDEN,
            keys.revision.encode(),
            keys.instance("a", "i").encode(),
            [1, b"x", b"tail"],
        ]
        query: dict[str, Any] = {
            "P": keys.base,
            "cursor": "c",
            "limit": 5,
            "budget": 6,
            "q": "",
            "text_budget": 2,
        }
        argv = [query[a.name] for a in QUERY.arguments] + ["set-1", "set-2"]
        probe = "return {limit, cursor, sets, SUMMARY_FIELDS, ROW}"
        got = await redis.eval(QUERY.prelude() + probe, 1, keys.revision, *argv)
        assert got == [5, b"c", [b"set-1", b"set-2"], [f.encode() for f in SUMMARY_FIELDS], 3]
    finally:
        await redis.aclose()
