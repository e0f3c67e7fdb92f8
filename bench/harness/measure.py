"""Measuring a run: process CPU and memory, Redis CPU, load, queue depth, percentiles.

CPU comes from /proc/<pid>/stat (every thread of the process, in clock ticks of 10 ms), so a
measurement window should be long against a tick.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from aio_pika.abc import AbstractChannel
from redis.asyncio import Redis

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_kib(pid: int | str = "self") -> tuple[int, int]:
    """A process's resident set and its peak (VmRSS, VmHWM), in KiB."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def load_average() -> float:
    """The 1-minute load average: above ~2 here, other processes shared the cores."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


async def redis_cpu_s(redis: Redis) -> float:
    """CPU seconds the Redis server used so far (every client's work, not only ours)."""
    info: dict[str, Any] = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def queue_ready(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in the queue (a passive declare counts neither unacked nor in flight)."""
    declared = await channel.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    assert count is not None
    return count


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank); NaN if none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]
