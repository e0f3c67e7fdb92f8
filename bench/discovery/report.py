"""What a discovery run prints: a line per measurement, and a table per size with the goals."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from bench.discovery.load import Measurement
from bench.discovery.population import SKILLS, SKILLS_PER_AGENT, TAGS_PER_AGENT
from bench.harness.tables import Column, Table

KINDS: dict[str, str] = {
    "single": "single skill, limit 100",
    "two": "two skills, limit 100",
    "get": "GET /v1/agents/{id}",
    "walk": "cursor walk, 1 skill, limit 100",
}
PATHS: dict[str, str] = {
    "api": "API (HTTP)",
    "raw": "ceiling: EVALSHA query.lua",
    "reader": "ceiling: RegistryReader",
}


def api_path(name: str) -> str:
    """The `path` of an API variant's measurements: `api`, or `api:<name>`."""
    return f"api:{name}" if name else "api"


def processes_name(count: int) -> str:
    """The API variant of `--api-processes`: the installed API as `count` processes."""
    return f"{count}-proc"


def processes_of(path: str) -> int | None:
    """The process count of an `--api-processes` path (`api:2-proc`), else None."""
    if path.startswith("api:") and path.endswith("-proc") and path[4:-5].isdigit():
        return int(path[4:-5])
    return None


def path_label(path: str) -> str:
    """A path's name in the table."""
    if path.startswith("api:"):
        return f"API {path[4:]} (HTTP)"
    return PATHS[path]


TABLE = Table(
    Column("kind / path", 34, align="<"),
    Column("req/s", 7, ",.0f"),
    Column("p50 ms", 7, ".2f"),
    Column("p99 ms", 7, ".2f"),
    Column("max ms", 7, ".1f"),
    Column("srv us/req", 10, ".0f"),
    Column("cli us/req", 10, ".0f"),  # the load generator's: API paths only
    Column("Redis us/req", 12, ".0f"),
    Column("load", 5, ".1f"),
    Column("err", 4),
    indent="  ",
)

GOAL_P99_MS = 10.0  # single-skill page at the largest size, 8 concurrent clients
GOAL_RATIO = 0.5  # API requests/s against the ceiling


def report(size: int, m: Measurement) -> None:
    """One line of progress per measurement."""
    walks = f", {m.walks} walks (p50 {m.walk_p50_ms:.0f} ms)" if m.walks else ""
    errors = f", {m.errors} ERRORS (first: {m.first_error})" if m.errors else ""
    print(
        f"[{size:,} {m.kind} {m.path}] {m.rate:,.0f} req/s, p50 {m.p50_ms:.2f} ms, "
        f"p99 {m.p99_ms:.2f} ms ({m.requests:,} requests in {m.wall_s:.1f}s{walks}, "
        f"load {m.load:.1f}){errors}",
        flush=True,
    )


def median_of(measurements: Sequence[Measurement]) -> Measurement:
    """The measurement with the median requests/s (the lower one of an even count)."""
    ordered = sorted(measurements, key=lambda m: m.rate)
    return ordered[(len(ordered) - 1) // 2]


def print_table(args: argparse.Namespace, size: int, results: Sequence[Measurement]) -> None:
    """The table of one size: medians per kind and path, ratios, and the goals at the largest."""
    print()
    print(
        f"agentroster discovery: {size:,} live agents ({SKILLS_PER_AGENT} of {SKILLS} skills, "
        f"{TAGS_PER_AGENT} tags each), {args.concurrency} concurrent {args.client} clients, "
        f"{args.seconds:g} s per measurement, {os.cpu_count()} cores"
        + (f", medians of {args.repeat} (by req/s)" if args.repeat > 1 else "")
    )
    print(TABLE.header())
    print(TABLE.rule())
    for kind in args.kinds:
        rows = {
            path: median_of([m for m in results if m.kind == kind and m.path == path])
            for path in dict.fromkeys(m.path for m in results if m.kind == kind)
        }
        print(KINDS[kind] + (" (per page)" if kind == "walk" else ""))
        for path, m in rows.items():
            client = m.per_request_us(m.client_cpu_s) if is_api(path) else None
            print(
                TABLE.row(
                    path_label(path)[:34],
                    m.rate,
                    m.p50_ms,
                    m.p99_ms,
                    m.max_ms,
                    m.per_request_us(m.server_cpu_s),
                    client,
                    m.per_request_us(m.redis_cpu_s),
                    m.load,
                    m.errors,
                )
            )
        if kind == "walk":
            walks = ", ".join(
                f"{path} {m.walks / m.wall_s:.1f}/s, p50 {m.walk_p50_ms:.0f} ms, "
                f"p99 {m.walk_p99_ms:.0f} ms"
                for path, m in rows.items()
                if m.wall_s
            )
            print(f"  whole walks: {walks}")
        scaled = {n: m for path, m in rows.items() if (n := processes_of(path))}
        if len(scaled) > 1 and (one := scaled.get(1)) and one.rate:
            cells = ", ".join(
                f"{n} proc {m.rate:,.0f} req/s (x{m.rate / one.rate:.2f})"
                for n, m in sorted(scaled.items())
            )
            print(f"  scale-out: {cells}")
        for api in (path for path in rows if is_api(path)):
            name = "API" if api == "api" else api[4:]
            ratios = ", ".join(
                f"{name}/{path} {rows[api].rate / rows[path].rate:.2f}"
                for path in rows
                if not is_api(path) and rows[path].rate
            )
            if ratios:
                print(f"  requests/s {ratios}")
    if size != max(args.sizes):
        return
    ceiling = "raw" if "raw" in args.ceilings else (args.ceilings or [None])[0]
    for api in dict.fromkeys(m.path for m in results if is_api(m.path)):
        name = "API" if api == "api" else f"API {api[4:]}"
        medians = {
            kind: median_of([m for m in results if m.kind == kind and m.path == api])
            for kind in dict.fromkeys(m.kind for m in results if m.path == api)
        }
        if "single" in medians:
            single = medians["single"]
            verdict = "met" if single.p99_ms < GOAL_P99_MS else "NOT met"
            print(
                f"goal: single-skill page p99 < {GOAL_P99_MS:g} ms at {size:,} agents with "
                f"{args.concurrency} clients ({name}): {single.p99_ms:.1f} ms ({verdict})"
            )
        for kind, m in medians.items():
            bases = [c for c in results if c.kind == kind and c.path == ceiling]
            if not bases or not (base := median_of(bases)).rate:
                continue
            ratio = m.rate / base.rate
            print(
                f"goal: {kind} {name} >= {GOAL_RATIO:.0%} of the ceiling ({ceiling}) in "
                f"requests/s: {ratio:.3f} ({'met' if ratio >= GOAL_RATIO else 'NOT met'})"
            )


def is_api(path: str) -> bool:
    """Whether a path is an API process (not a ceiling)."""
    return path == "api" or path.startswith("api:")
