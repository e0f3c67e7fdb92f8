"""The heartbeat table: one row per measurement, medians, and the worker/ceiling ratio."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Sequence

from bench.heartbeats.roles import BATCH, PREFETCH, VARIANTS
from bench.heartbeats.run import Result


def print_table(args: argparse.Namespace, results: Sequence[Result]) -> None:
    print()
    print(
        f"agentroster heartbeats: {args.agents:,} agents, {args.heartbeats:,} heartbeats per "
        f"measurement, prefetch {PREFETCH}, batch_max {BATCH}, {os.cpu_count()} cores"
    )
    header = (
        f"{'variant':<44} {'heartbeats/s':>12} {'CPU us/hb':>9} {'Redis us/hb':>11} "
        f"{'cmds/Lua':>8} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{VARIANTS[r.variant]:<44} {r.rate:>12,.0f} {r.cpu_us:>9.1f} {r.redis_cpu_us:>11.1f} "
            f"{r.batch_size:>8.1f} {r.load:>5.1f}"
        )
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for variant in dict.fromkeys(r.variant for r in results):
        rate[variant] = statistics.median(r.rate for r in results if r.variant == variant)
        cpu[variant] = statistics.median(r.cpu_us for r in results if r.variant == variant)
    if args.repeat > 1:
        print(f"medians of {args.repeat} measurements:")
        for variant in rate:
            print(f"{VARIANTS[variant]:<44} {rate[variant]:>12,.0f} {cpu[variant]:>9.1f}")
    if "worker" in rate and "ceiling" in rate:
        ratio = rate["worker"] / rate["ceiling"]
        print(
            f"ratio worker/ceiling: heartbeats/s {ratio:.2f} (goal >= 0.6: "
            f"{'met' if ratio >= 0.6 else 'NOT met'}); CPU us/heartbeat "
            f"{cpu['worker'] / cpu['ceiling']:.2f}"
        )
