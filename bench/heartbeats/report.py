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
            TABLE.row(
                _label(r.variant, r.processes),
                r.rate,
                r.cpu_us,
                r.redis_cpu_us,
                r.batch_size,
                r.load,
            )
        )
    rate: dict[tuple[str, int], float] = {}
    cpu: dict[tuple[str, int], float] = {}
    for key in dict.fromkeys((r.variant, r.processes) for r in results):
        rate[key] = statistics.median(r.rate for r in results if (r.variant, r.processes) == key)
        cpu[key] = statistics.median(r.cpu_us for r in results if (r.variant, r.processes) == key)
    if args.repeat > 1:
        print(f"medians of {args.repeat} measurements:")
        for key in rate:
            print(TABLE.row(_label(*key), rate[key], cpu[key]))
    print_scale_out(rate)
    rate1 = {variant: r for (variant, n), r in rate.items() if n == 1}
    cpu1 = {variant: c for (variant, n), c in cpu.items() if n == 1}
    _print_ratio(rate1, cpu1)


def _label(variant: str, processes: int) -> str:
    """A row's name: the variant, and its process count when more than one."""
    return VARIANTS[variant] if processes == 1 else f"{variant}, {processes} processes"


def print_scale_out(rate: dict[tuple[str, int], float]) -> None:
    """Per variant measured with several process counts: heartbeats/s per count, and the
    ratio to one process (1.00 at one; N would be linear scaling)."""
    for variant in dict.fromkeys(v for v, _ in rate):
        counts = sorted(n for v, n in rate if v == variant)
        if len(counts) < 2:
            continue
        one = rate.get((variant, 1))
        cells = ", ".join(
            f"{n} proc {rate[variant, n]:,.0f}/s"
            + (f" (x{rate[variant, n] / one:.2f})" if one else "")
            for n in counts
        )
        print(f"scale-out, {variant}: {cells}; load {load_note()}")


def load_note() -> str:
    """The load averages now (1, 5, 15 min) against the cores: others' work shares them."""
    with open("/proc/loadavg") as loadavg:
        one, five, fifteen = loadavg.read().split()[:3]
    return f"{one} {five} {fifteen} on {os.cpu_count()} cores"


def _print_ratio(rate: dict[str, float], cpu: dict[str, float]) -> None:
    """The worker against the ceiling, one process each, when both were measured."""
    if "worker" in rate and "ceiling" in rate:
        ratio = rate["worker"] / rate["ceiling"]
        print(
            f"ratio worker/ceiling: heartbeats/s {ratio:.2f} (goal >= 0.6: "
            f"{'met' if ratio >= 0.6 else 'NOT met'}); CPU us/heartbeat "
            f"{cpu['worker'] / cpu['ceiling']:.2f}"
        )
