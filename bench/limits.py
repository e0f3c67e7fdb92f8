"""Worst-case Redis time of one script call under the registration limits and the `q` budget.

Run from the repository root: `.venv/bin/python -m bench.limits` (see bench/README.md, Limits).

It starts a private `redis-server` on a free port (or uses `--redis-url`), so that it can log
every command in its SLOWLOG and report the time Redis itself spent in each script call
(not the client's round trip), then:

1. **apply**: builds the most expensive registration `prepare()` accepts under the default
   `Limits` (a card at the card limit, as many index terms as allowed at the longest term, 32
   endpoints with long urls, 64 labels), then applies batches of such registrations of distinct
   agents with `RedisStore.apply`, the worker's own call (as many per call as the worker's
   batcher puts in one under `AGENTROSTER_BATCH_MAX_BYTES`, or `--batch`): first as new agents,
   then again with every card and term changed (the costliest: every old term out, every new
   term in, an `agent.updated` with the card in the outbox).
2. **q**: registers `--agents` live agents whose search texts are just under 1 KiB (the most
   text per budget unit) and none of which matches, then times `GET /v1/agents?q=...` as the
   API's `RegistryReader` runs it: with the text budget of before this change (every id the
   scan budget allows, 20,000) and with `TEXT_BUDGET`.

Prints the longest and median script time of each part.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import shutil
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from agentroster.registry.prepare import Limits, Prepared, Rejected, TtlBounds, prepare
from agentroster.registry.terms import TEXT_BUDGET, Filters
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from agentroster.store.reader import SCAN_BUDGET, RegistryReader
from agentroster.store.redis_store import REAP_BUDGET, ReapResult, RedisStore
from agentroster.worker.batcher import batch_length
from bench.harness.processes import free_port
from bench.harness.services import delete_keys, glob_escape, new_prefix

SENT_AT = datetime(2026, 1, 1, tzinfo=UTC).isoformat()


@contextlib.asynccontextmanager
async def redis_server(url: str | None) -> AsyncIterator[tuple[Redis, bool]]:
    """The given Redis, or a private redis-server (then SLOWLOG gives server-side times)."""
    if url is not None:
        client = Redis.from_url(url)
        try:
            yield client, False
        finally:
            await client.aclose()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: install it or pass --redis-url")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = Redis(port=port)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError, ConnectionError, Exception):
                if await client.ping():
                    break
            await asyncio.sleep(0.05)
        await client.config_set("slowlog-log-slower-than", 0)
        await client.config_set("slowlog-max-len", 300_000)
        yield client, True
    finally:
        await client.aclose()
        process.terminate()
        await process.wait()


def largest_registration(agent_id: str, variant: str, limits: Limits) -> Prepared:
    """The costliest registration `prepare()` accepts: most terms, longest terms, most bytes.

    `variant` goes into every skill id, tag and label value, so two variants share no term.
    """
    term_room = limits.max_term_bytes - len("skill:")  # the longest id a term may carry
    labels = {
        f"{n:02d}-{'k' * 57}"[:63]: f"{variant}-{n}-{'v' * 250}"[:256]
        for n in range(64)
        if len(f"label:{'k' * 63}={'v' * 256}") <= limits.max_term_bytes
    }
    endpoints = [
        {
            "transport": "http",
            "protocol": "a2a",
            "protocol_version": "1.0",
            "binding": "JSONRPC",
            "url": f"https://{variant}.example/{n}/" + "p" * 1900,
        }
        for n in range(limits.max_endpoints)
    ]
    fixed_terms = len(labels) + 2  # + protocol:a2a, transport:http
    skills_wanted = min(limits.max_skills, limits.max_index_terms - fixed_terms)
    # each skill: an id and a tag, both as long as a term allows; fewer skills until it fits
    for n_skills in range(skills_wanted, 0, -1):
        n_tags = min(n_skills, limits.max_index_terms - fixed_terms - n_skills)
        skills = [
            {
                "id": f"{variant}-s{n}-" + "i" * term_room,
                "name": "n",
                "tags": [f"{variant}-t{n}-" + "t" * term_room] if n < n_tags else [],
            }
            for n in range(n_skills)
        ]
        for skill in skills:
            skill["id"] = skill["id"][:term_room]
            skill["tags"] = [tag[: limits.max_term_bytes - len("tag:")] for tag in skill["tags"]]
        card = {"name": agent_id, "version": variant, "skills": skills}
        body = {
            "agent_id": agent_id,
            "instance_id": "i-1",
            "seq": 1 if variant == "a" else 2,
            "ttl_s": 3600,
            "card": card,
            "endpoints": endpoints,
            "labels": labels,
            "sent_at": SENT_AT,
        }
        try:
            return prepare(f"agent.{agent_id}.register", orjson.dumps(body), None, limits)
        except Rejected:
            continue
    raise SystemExit("no registration fits the limits")


def most_terms_registration(agent_id: str, variant: str, limits: Limits) -> Prepared:
    """The registration with the most index terms for the fewest bytes: each term a key that
    applying it creates (and a changed card deletes), the costliest thing per byte."""
    n_skills = min(limits.max_skills, (limits.max_index_terms - 2 + 1) // 2)
    n_tags = limits.max_index_terms - 2 - n_skills
    skills = [
        {"id": f"{variant}{n}", "tags": [f"{variant}t{n}"] if n < n_tags else []}
        for n in range(n_skills)
    ]
    body = {
        "agent_id": agent_id,
        "instance_id": "i-1",
        "seq": 1 if variant == "a" else 2,
        "ttl_s": 3600,
        "card": {"name": agent_id, "version": variant, "skills": skills},
        "endpoints": [{"transport": "h", "protocol": "a", "url": "h://h"}],
        "sent_at": SENT_AT,
    }
    return prepare(f"agent.{agent_id}.register", orjson.dumps(body), None, limits)


SHAPES = {"most bytes": largest_registration, "most terms": most_terms_registration}


def small_registration(agent_id: str, text_bytes: int, skill: str) -> Prepared:
    """A live agent whose search text is about `text_bytes` long and matches nothing asked."""
    card = {
        "name": agent_id,
        "description": "d" * max(0, text_bytes - len(agent_id) - len(skill) - 4),
        "url": f"https://{agent_id}.example/a2a",
        "skills": [{"id": skill}],
    }
    body = {
        "agent_id": agent_id,
        "instance_id": "i-1",
        "seq": 1,
        "ttl_s": 3600,
        "card": card,
        "sent_at": SENT_AT,
    }
    return prepare(f"agent.{agent_id}.register", orjson.dumps(body), None, Limits())


async def script_times(redis: Redis, private: bool, calls: Sequence[Any]) -> list[float]:
    """Seconds of the script call each of `calls` (a coroutine function) makes: from SLOWLOG on
    a private server (which also logs the commands run inside scripts, so it is read after
    each call), else the client's wall time."""
    times: list[float] = []
    for call in calls:
        if private:
            await redis.slowlog_reset()
            await call()
            entries = await redis.slowlog_get(300_000)
            times += [
                e["duration"] / 1e6
                for e in entries
                if (e["command"] or b"").split(b" ", 1)[0].upper() in (b"EVALSHA", b"EVAL")
            ]
        else:
            started = time.perf_counter()
            await call()
            times.append(time.perf_counter() - started)
    return times


def made(args: argparse.Namespace) -> str:
    """A new prefix for one part of the run, remembered so the run can delete its keys."""
    prefix = new_prefix()
    args.prefixes.append(prefix)
    return prefix


def describe(label: str, seconds: Sequence[float]) -> None:
    """One line: count, median and longest of script times."""
    print(
        f"{label:58s} calls {len(seconds):4d}  median {statistics.median(seconds) * 1000:8.1f} ms"
        f"  max {max(seconds) * 1000:8.1f} ms",
        flush=True,
    )


async def bench_apply(redis: Redis, private: bool, args: argparse.Namespace) -> None:
    """Part 1: batches of the costliest registrations of each shape, new then all changed."""
    store = RedisStore(redis, made(args))
    limits, defaults = Limits(), Settings()
    for shape, build in SHAPES.items():
        one = build("agent-0", "a", limits)
        # as many per call as the worker's batcher puts in one
        per_call = args.batch or batch_length(
            [one] * defaults.batch_max, defaults.batch_max, defaults.batch_max_bytes
        )
        print(
            f"{shape}: card {len(one.card):,} B, view {len(one.view):,} B, "
            f"{one.terms.count(chr(10)) + 1} terms ({len(one.terms):,} B), text "
            f"{len(one.text):,} B: {one.stored_bytes():,} B stored, batch cost {one.cost():,}",
            flush=True,
        )
        for variant, label in (("a", "new agents"), ("b", "every card and term changed")):
            batches = [
                [build(f"{shape[5:]}-{b}-{n}", variant, limits) for n in range(per_call)]
                for b in range(args.batches)
            ]
            calls = [lambda batch=batch: store.apply(batch) for batch in batches]
            times = await script_times(redis, private, calls)
            describe(f"apply, {per_call} x {shape} per call, {label}", times)


async def bench_reap(redis: Redis, private: bool, args: argparse.Namespace) -> None:
    """Part 3: sweeps of `--reap` due leases of the costliest registrations: the one that
    expires them (each an `agent.left` with its view) and the one that deletes them after
    their retention (each index term removed)."""
    limits = Limits(ttl=TtlBounds(min_s=0.001, max_s=3600))
    for shape, build in SHAPES.items():
        store = RedisStore(redis, made(args), retention_ms=1, flap_max_events=0)

        async def register_all(store: RedisStore, build: Any = build, shape: str = shape) -> None:
            for start in range(0, args.reap, 5):
                batch = [
                    dataclasses.replace(build(f"{shape[5:]}-{n}", "a", limits), ttl_ms=1)
                    for n in range(start, min(start + 5, args.reap))
                ]
                await store.apply(batch)

        await register_all(store)
        await asyncio.sleep(0.01)
        for budget, label in ((0, "before: no budget"), (REAP_BUDGET, "after")):
            results: list[ReapResult] = []
            # no gap (the first sweep would give every lease a full TTL), no brake
            sweep = functools.partial(store.reap, args.reap, gap_ms=3_600_000, brake_share=0)

            async def sweeps(sweep: Any = sweep, results: Any = results, b: int = budget) -> None:
                while True:  # as the reaper does: again at once while more is due
                    results.append(await sweep(budget=b))
                    if not results[-1].more_due:
                        return

            if budget:  # register them again, for the budgeted sweeps
                await register_all(store)
                await asyncio.sleep(0.01)
            # the retention is 1 ms: the same run of sweeps expires and then deletes them
            times = await script_times(redis, private, [sweeps])
            expired = sum(r.leases_expired for r in results)
            deleted = sum(r.deleted for r in results)
            describe(f"reap, {shape}, {expired:,} expired, {deleted:,} deleted ({label})", times)


async def bench_query(redis: Redis, private: bool, args: argparse.Namespace) -> None:
    """Part 2: `q` over many agents, none matching, before and after the text budget."""
    prefix = made(args)
    store = RedisStore(redis, prefix)
    for start in range(0, args.agents, 500):
        batch = [
            small_registration(f"agent-{n:06d}", args.text_bytes, ("even", "odd")[n % 2])
            for n in range(start, min(start + 500, args.agents))
        ]
        await store.apply(batch)
    print(f"registered {args.agents:,} agents, search texts of {args.text_bytes} B", flush=True)
    filters = Filters(q="no-such-text")
    # before: no text budget, and the scan budget of then (20,000 ids)
    budgets = (("before", 20_000, 20_000), ("after", SCAN_BUDGET, TEXT_BUDGET))
    for label, scan_budget, text_budget in budgets:
        reader = RegistryReader(redis, prefix, text_budget=text_budget, scan_budget=scan_budget)
        calls = [lambda r=reader: r.list_agents("live", 100, None, filters)] * args.queries
        times = await script_times(redis, private, calls)
        describe(f"q over {args.agents:,} agents ({label}: {text_budget:,} texts)", times)
    # for comparison, the worst filter without q: two large index sets that never intersect,
    # so the scan budget (SCAN_BUDGET ids) is what ends the request
    disjoint = Filters(skills=("even", "odd"))
    for label, scan_budget in (("before", 20_000), ("after", SCAN_BUDGET)):
        reader = RegistryReader(redis, prefix, scan_budget=scan_budget)
        scans = [lambda r=reader: r.list_agents("live", 100, None, disjoint)] * args.queries
        times = await script_times(redis, private, scans)
        describe(f"skill=even&skill=odd, no match ({label}: {scan_budget:,} ids)", times)


async def main(argv: Sequence[str] | None = None) -> None:
    """Run both parts against a private Redis (or `--redis-url`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument(
        "--batch", type=int, default=0, help="registrations per apply call (0: as the worker)"
    )
    parser.add_argument("--batches", type=int, default=5, help="apply calls per round")
    parser.add_argument("--agents", type=int, default=50_000, help="agents for the q part")
    parser.add_argument("--text-bytes", type=int, default=1000, help="search text per agent")
    parser.add_argument("--queries", type=int, default=20, help="q requests per variant")
    parser.add_argument("--reap", type=int, default=1000, help="leases one sweep expires")
    parser.add_argument("--skip-apply", action="store_true")
    parser.add_argument("--skip-reap", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    args = parser.parse_args(argv)
    if args.redis_url is not None:
        print("note: a shared Redis gives round-trip times, not server-side times", flush=True)
    args.prefixes = []
    async with redis_server(args.redis_url) as (redis, private):
        try:
            if not args.skip_apply:
                await bench_apply(redis, private, args)
            if not args.skip_reap:
                await bench_reap(redis, private, args)
            if not args.skip_query:
                await bench_query(redis, private, args)
        finally:  # a private server goes with its keys; a shared one keeps only others'
            if not private:
                deleted = 0
                for prefix in args.prefixes:
                    deleted += await delete_keys(redis, glob_escape(Keys(prefix).base) + "*")
                print(f"cleaned up: {deleted:,} Redis keys of {len(args.prefixes)} prefixes")


if __name__ == "__main__":
    asyncio.run(main())
