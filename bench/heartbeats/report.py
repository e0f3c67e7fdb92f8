"""The heartbeat table: one row per measurement, medians, and the worker/ceiling ratio."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Sequence

from bench.harness.tables import Column, Table
from bench.heartbeats.roles import BATCH, PREFETCH, VARIANTS
from bench.heartbeats.run import Result

TABLE = Table(
    Column("variant", 44, align="<"),
    Column("heartbeats/s", 12, ",.0f"),
    Column("CPU us/hb", 9, ".1f"),
    Column("Redis us/hb", 11, ".1f"),
    Column("cmds/Lua", 8, ".1f"),
    Column("load", 5, ".1f"),
)


def print_table(args: argparse.Namespace, results: Sequence[Result]) -> None:
    """The table: one row per measurement, medians with --repeat, the worker/ceiling ratio."""
    print()
    print(
        f"agentroster heartbeats: {args.agents:,} agents, {args.heartbeats:,} heartbeats per "
        f"measurement, prefetch {PREFETCH}, batch_max {BATCH}, {os.cpu_count()} cores"
    )
    print(TABLE.header())
    print(TABLE.rule())
    for r in results:
        print(
            TABLE.row(VARIANTS[r.variant], r.rate, r.cpu_us, r.redis_cpu_us, r.batch_size, r.load)
        )
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for variant in dict.fromkeys(r.variant for r in results):
        rate[variant] = statistics.median(r.rate for r in results if r.variant == variant)
        cpu[variant] = statistics.median(r.cpu_us for r in results if r.variant == variant)
    if args.repeat > 1:
        print(f"medians of {args.repeat} measurements:")
        for variant in rate:
            print(TABLE.row(VARIANTS[variant], rate[variant], cpu[variant]))
    if "worker" in rate and "ceiling" in rate:
        ratio = rate["worker"] / rate["ceiling"]
        print(
            f"ratio worker/ceiling: heartbeats/s {ratio:.2f} (goal >= 0.6: "
            f"{'met' if ratio >= 0.6 else 'NOT met'}); CPU us/heartbeat "
            f"{cpu['worker'] / cpu['ceiling']:.2f}"
        )
