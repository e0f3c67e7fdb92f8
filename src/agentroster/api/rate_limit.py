"""Token buckets per key, in one API process, with a bounded number of buckets.

Each bucket holds at most `burst` tokens and gains `rate_per_s` a second; a request takes one.
The buckets live in the process (no Redis round trip on the hot path), so the limit is per API
process: N replicas behind a balancer let a key make up to N times the rate.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

#: Buckets kept at most; the least recently used is dropped past it (it comes back full).
MAX_BUCKETS = 100_000


class RateLimiter:
    """Token buckets keyed by any string (a key id, a client address)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_buckets: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max = max_buckets
        self._clock = clock
        #: key -> (tokens, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - then) * self._rate)

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may make a request (0: now); takes nothing."""
        level = self._level(key, self._clock())
        return 0.0 if level >= 1 else (1 - level) / self._rate

    def take(self, key: str) -> float:
        """Take a token for `key`: 0 when it had one, else the seconds until it will."""
        now = self._clock()
        level = self._level(key, now)
        if level < 1:
            self._store(key, level, now)
            return (1 - level) / self._rate
        self._store(key, level - 1, now)
        return 0.0

    def _store(self, key: str, level: float, now: float) -> None:
        self._buckets[key] = (level, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
