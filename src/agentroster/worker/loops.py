"""What the worker's three loops (batcher, reaper, relay) share: which errors mean "Redis is
unavailable, wait it out" and how an agent's flapping is reported.

Cancellation that survives the libraries under these loops is `agentroster.cancellation`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Errors after which a loop waits and retries (never drops what it holds): Redis restarting,
#: unreachable, or too slow to answer.
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def report_flapping(metrics: WorkerMetrics, agents: Sequence[str]) -> None:
    """Log and count agents whose events a script began to damp (flap damping)."""
    for agent_id in agents:
        metrics.flapping.inc()
        log.warning(
            "agent %s is flapping: its events are held back until its flap window ends, "
            "then its final state is published",
            agent_id,
        )
