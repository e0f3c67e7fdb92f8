"""What HTTP writes need besides the gateway: seq numbers when the client sends none, when to
heartbeat next, and which HTTP status and body answer a worker's outcome. Pure: no I/O."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson

from agentroster.api.errors import ApiError
from agentroster.api.gateway import Outcome

#: The largest seq a command may carry (the Lua scripts compare seqs as doubles).
MAX_SEQ = 2**53 - 1

#: Dead-letter reasons answered with their own status; every other reason is 422.
REJECTED_STATUS: dict[str, int] = {
    "forbidden": 403,
    "identity-required": 403,
    "quota-exceeded": 409,
    "message-too-large": 413,
}


class SeqClock:
    """Numbers commands whose client sent no `seq`: the API's clock in microseconds.

    Strictly increasing within one API process (two requests in one microsecond get
    consecutive numbers), so the commands of one client through one API process are applied
    in the order they were sent. Across API replicas the clocks may disagree by a little: a
    client that needs strict order there (or numbers its commands itself anyway) sends `seq`.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns
        self._last = 0

    def next(self) -> int:
        """The next seq: now in microseconds, or one more than the last if the clock lags."""
        seq = max(self._clock_ns() // 1000, self._last + 1)
        self._last = seq
        return min(seq, MAX_SEQ)


def heartbeat_in_s(ttl_s: float, interval_s: float | None = None) -> float:
    """When to renew a lease of `ttl_s`: the agent's own interval, else a third of the TTL
    (two renewals may be lost before the lease expires)."""
    if interval_s is not None:
        return min(interval_s, ttl_s)
    return ttl_s / 3


def retry_after(seconds: float) -> str:
    """A `Retry-After` value: whole seconds, at least 1 (rounded down: early beats late)."""
    return str(max(1, math.floor(seconds)))


def rejected_error(outcome: Outcome, details: dict[str, object]) -> ApiError:
    """The HTTP error of a command the worker dead-lettered, its code the dead-letter reason."""
    reason = outcome.reason or "rejected"
    status = REJECTED_STATUS.get(reason, 422)
    message = outcome.message or f"the registry rejected the command: {reason}"
    return ApiError(status, reason, message, {**details, "reason": reason})


def write_answer(
    ids: dict[str, object],
    outcome: Outcome,
    *,
    ttl_s: float | None,
    next_s: float | None,
    created: bool = False,
) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body (`WriteAnswer`) and headers of a write's answer; raises the `ApiError`
    a worker's outcome means (`ids`: agent_id, instance_id, seq).

    The body is written with orjson, not validated against the response model again: that
    would cost the hot path of every heartbeat.
    """
    if outcome.status == "rejected":
        raise rejected_error(outcome, ids)
    if outcome.reason == "unknown-agent":
        raise ApiError(
            404,
            "unknown-agent",
            f"agent {ids['agent_id']!r} is not registered: register the instance first",
            ids,
        )
    applied = outcome.status == "applied"
    body = {
        **ids,
        "ttl_s": ttl_s,
        "heartbeat_in_s": next_s,
        "outcome": outcome.status,
        "reason": outcome.reason if applied else None,
    }
    headers = {"Retry-After": retry_after(next_s)} if next_s is not None else {}
    status = (201 if created else 200) if applied else 202
    return status, orjson.dumps(body), headers
