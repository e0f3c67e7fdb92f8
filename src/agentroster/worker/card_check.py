"""Card verification in the background: after a batch committed, never in its way.

The batcher offers each applied registration (`offer`, no I/O); one that asked for it (or
every one, `AGENTROSTER_VERIFY_CARDS=all`; none when `off`) goes into a bounded queue where an
agent holds one place at most (`background_checks.py`), and a few tasks take checks from it:
each skips a card that is no longer the agent's or was already checked
(`RedisStore.needs_check`: a Beacon re-registering the same card is not fetched again), fetches
through the guard (`card_fetch.py`) and records the result with verify.lua, which bumps the
revision and writes `agent.updated` when `verified` changed.

What this costs the write path: an append to a queue. What it may lose: a full queue drops the
check (counted, `result="dropped"`); a worker that stops or crashes loses the checks it had not
done yet. Neither harms the agent: it stays unchecked (`verified: null`) until its card changes
or it registers again after its record was deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import orjson

from agentroster.registry.card_match import endpoint_urls
from agentroster.registry.prepare import Prepared
from agentroster.store.redis_store import RedisStore
from agentroster.worker.background_checks import BackgroundChecks
from agentroster.worker.card_fetch import CardFetcher, Result
from agentroster.worker.loops import report_flapping
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Checks waiting at most; past it a check is dropped (a flood of registrations must not hold
#: unbounded memory, and a check is only worth doing soon after the registration).
QUEUE_SIZE = 1000
#: Checks in flight at once per worker.
CONCURRENCY = 8

Mode = Literal["off", "requested", "all"]


@dataclass(frozen=True, slots=True)
class Check:
    """One registration to check: the state it is for, what to fetch, what to compare."""

    agent_id: str
    state_digest: str
    base_url: str | None
    name: str
    urls: frozenset[str]


def check_for(command: Prepared) -> Check:
    """What to check for an applied registration: its view's name and endpoint URLs; the base
    URL is its first http(s) endpoint (None: nothing to fetch)."""
    try:
        view = orjson.loads(command.view)
    except orjson.JSONDecodeError:
        view = {}
    endpoints = view.get("endpoints") if isinstance(view, dict) else None
    urls = [e.get("url") for e in endpoints or [] if isinstance(e, dict)]
    http = [u for u in urls if isinstance(u, str) and u.lower().startswith(("http:", "https:"))]
    name = view.get("name") if isinstance(view, dict) else ""
    return Check(
        agent_id=command.agent_id,
        state_digest=command.state_digest,
        base_url=http[0] if http else None,
        name=name if isinstance(name, str) else "",
        urls=endpoint_urls(http),
    )


class CardVerifier:
    """The bounded background verifier of one worker (see the module docstring)."""

    def __init__(
        self,
        store: RedisStore,
        fetcher: CardFetcher,
        metrics: WorkerMetrics,
        *,
        mode: Mode,
        queue_size: int = QUEUE_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._metrics = metrics
        self.mode = mode
        self._checks = BackgroundChecks(
            "card check",
            self._check,
            metrics.verifications.labels("dropped").inc,
            queue_size=queue_size,
            concurrency=concurrency,
        )

    def wanted(self, command: Prepared) -> bool:
        """Whether this registration is to be checked under the mode."""
        return command.kind == "register" and (
            self.mode == "all" or (self.mode == "requested" and command.verify)
        )

    def offer(self, command: Prepared) -> None:
        """Queue a check of an applied registration if wanted; never waits."""
        if self.wanted(command):
            key = (command.agent_id, command.state_digest)
            self._checks.offer(command.agent_id, key, check_for(command))

    def start(self) -> None:
        """Start the checking tasks."""
        self._checks.start()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop checking (pending checks are lost) and close the fetcher."""
        await self._checks.stop(timeout_s)
        await self._fetcher.aclose()

    async def idle(self) -> None:
        """Return once no check is queued or in flight (for tests and shutdown)."""
        await self._checks.idle()

    async def _check(self, check: Check) -> None:
        if not await self._store.needs_check(check.agent_id, check.state_digest):
            return
        if check.base_url is None:
            result = Result.UNREACHABLE  # no http(s) endpoint: nothing to fetch
        else:
            result = await self._fetcher.check(check.base_url, check.name, check.urls)
        self._metrics.verifications.labels(result.value).inc()
        recorded = await self._store.record_verification(
            check.agent_id, check.state_digest, result.verified
        )
        report_flapping(self._metrics, list(recorded.damped))
        log.info("card check of %s: %s", check.agent_id, result)
