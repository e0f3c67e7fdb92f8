"""The API process's read model: the whole registry in memory, fed by the outbox follower.

    model = ReadModel(reader, follower, outbox)
    await model.start()          # loads in the background; `ready` once loaded and caught up
    model.page(status, limit, cursor, filters)   # (revision, page) from memory
    await model.reach(revision, timeout_s)       # read-your-writes (`min_revision`)
    await model.stop()

**Loading is not one snapshot.** The registry is read page by page (`list_agents("all")`), and
page i shows the agents of its id range exactly at its own revision R_i, with R_1 <= ... <= R_n.
So the model subscribes to the follower *first* (position P, with P <= R_1: the follower never
runs ahead of Redis), buffers every event after P while it loads, and then applies the buffer,
skipping an event for an agent whose loaded record has `revision >= ` the event's. Per agent `a`
of the range of page i:

- loaded with revision r (its last event at or before R_i): an event of `a` after R_i has a
  revision above r and is applied; an event with revision in (P, r] is already in the record
  and is skipped; none lies in (r, R_i] (r is the last one), and events after R_i are all in
  the buffer since R_i >= P. So `a` ends as its last event left it;
- absent at R_i (not yet created, or deleted): its events after R_i are all applied; its events
  in (P, R_i] are applied too and end, if it existed in between, with its `agent.deleted`
  (absence at R_i means its last event at or before R_i was the deletion).

The model is complete once the follower delivered every event up to max R_i; its revision is
then the last revision applied (or max R_i). From then on every event must be the model's
revision + 1 (revisions are contiguous in the outbox: every change of state writes exactly one
entry, flap damping included, since a damped change does not take a revision). Any other
revision is a *gap* (the outbox was trimmed past a slow follower, or Redis lost its data and
revisions went on from its clock), as is the follower's `reset()`: the model then rebuilds
with the same argument, the buffer starting at the event that broke the sequence (events
before it may belong to a lost registry and must not create ghosts).

**Never a mix.** While (re)building, `ready` is false and nothing is served from memory: the
API answers from Redis (the query path that was the only one before, still the test oracle),
which is slower but exact, rather than 503 or a stale model of a registry that may no longer
exist. `/readyz` says not ready meanwhile, so a balancer prefers processes that are.

**What memory shows.** Each agent as of its last change (event): `last_seen`, the lease settings
and `live_instances` can be newer in Redis (a heartbeat, or a second instance of a live agent,
writes no event); `GET /v1/agents/{id}` reads Redis and has them exactly. An agent whose events
flap damping holds back shows what the world was last told until its damped final event, as a
client following the events sees it. Measured: bench/README.md, Discovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Sequence

from agentroster.api.errors import ApiError
from agentroster.api.follower import OutboxFollower
from agentroster.api.read_model.index import AgentIndex, Page, entry_from_record, record_from_event
from agentroster.cancellation import cancel_and_wait
from agentroster.registry.terms import Filters
from agentroster.store.outbox import Outbox, OutboxEvent
from agentroster.store.reader import RegistryReader

log = logging.getLogger(__name__)

#: Agents read per round trip while loading.
LOAD_PAGE = 1000
#: Events buffered while loading at most; past it the load starts again (a flood of changes
#: outran it, and the buffer must not grow without bound).
MAX_BUFFER = 1_000_000
#: Pause before loading again after Redis failed.
RETRY_S = 1.0
#: Retry-After (s) of the 503s a waiting read answers.
RETRY_AFTER_S = 1


class RevisionNotReached(ApiError):
    """`min_revision` was not reached within the wait a request may take."""

    def __init__(self, wanted: int, revision: int, waited_s: float) -> None:
        super().__init__(
            503,
            "revision-not-reached",
            f"this API process has not yet seen revision {wanted} (it is at {revision}); "
            "retry later",
            {"min_revision": wanted, "revision": revision, "waited_s": waited_s},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


class RevisionAhead(ApiError):
    """`min_revision` is beyond the registry's revision: no write has produced it (yet)."""

    def __init__(self, wanted: int, revision: int) -> None:
        super().__init__(
            410,
            "revision-ahead",
            f"revision {wanted} is beyond the registry's revision {revision} (a revision of "
            "another registry, or from before Redis lost its data): list without min_revision",
            {"min_revision": wanted, "revision": revision},
        )


class TooManyWaiting(ApiError):
    """Too many requests already wait for a revision in this process."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            503,
            "too-many-waiting",
            f"{limit} requests already wait for a revision in this API process; retry later",
            {"max_waiting": limit},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


class ReadModel:
    """The registry in memory at a known revision; see the module docstring."""

    def __init__(
        self,
        reader: RegistryReader,
        follower: OutboxFollower,
        outbox: Outbox,
        *,
        scan_budget: int,
        max_waiting: int,
        load_page: int = LOAD_PAGE,
    ) -> None:
        self.reader = reader
        self.follower = follower
        self.outbox = outbox
        self.scan_budget = scan_budget
        self.max_waiting = max_waiting
        self.load_page = load_page
        self.index = AgentIndex()
        #: The registry revision the model shows exactly (meaningful when `ready`).
        self.revision = 0
        #: Loads completed (the first one and every rebuild).
        self.loads = 0
        self._ready = False
        #: Events after the load's start position, while loading; None once ready.
        self._buffer: list[OutboxEvent] | None = None
        self._start = 0
        self._waiting = 0
        self._advanced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def ready(self) -> bool:
        """Whether the model is complete and following (pages may be served from it)."""
        return self._ready

    async def loaded(self) -> None:
        """Return once the model is ready (loaded and caught up)."""
        while not self._ready:
            await self._advanced.wait()

    async def start(self) -> None:
        """Load in the background, once the follower knows its position."""
        self._task = asyncio.create_task(self._first_load(), name="agentroster-read-model-load")

    async def _first_load(self) -> None:
        await self.follower.positioned()
        self._buffer = []
        self._start = self.follower.subscribe(self)
        await self._load()

    async def stop(self) -> None:
        """Stop loading and following."""
        self._stopped = True
        self.follower.unsubscribe(self)
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task], 5.0)

    # --- the follower's side ----------------------------------------------------------------

    def deliver(self, events: Sequence[OutboxEvent]) -> None:
        """Apply (or, while loading, buffer) the follower's events; a gap starts a rebuild."""
        for n, event in enumerate(events):
            if self._buffer is not None:
                expected = self._buffer[-1].revision + 1 if self._buffer else self._start + 1
                if event.revision != expected or len(self._buffer) >= MAX_BUFFER:
                    self._gap(expected, event)
                    self._rebuild(list(events[n:]))
                    return
                self._buffer.append(event)
            elif event.revision == self.revision + 1:
                self._apply(event)
                self.revision = event.revision
            elif event.revision > self.revision:
                self._gap(self.revision + 1, event)
                self._rebuild(list(events[n:]))
                return
        self._wake()

    def reset(self) -> None:
        """Redis lost its data: whatever the model holds is of a registry that is gone."""
        log.warning("read model: the registry's revision went back; rebuilding")
        self._rebuild([])

    def _gap(self, expected: int, event: OutboxEvent) -> None:
        log.warning(
            "read model: expected revision %d, the outbox gave %d; rebuilding",
            expected,
            event.revision,
        )

    def _apply(self, event: OutboxEvent) -> None:
        if event.kind == "deleted":
            self.index.remove(event.agent_id)
        else:
            self.index.put(entry_from_record(record_from_event(event)))

    def _wake(self) -> None:
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    # --- loading ----------------------------------------------------------------------------

    def _rebuild(self, buffer: list[OutboxEvent]) -> None:
        """Serve nothing from memory until a new load completed (never a mix of two)."""
        if self._stopped:
            return
        self._ready = False
        self.index = AgentIndex()  # not served meanwhile; its memory is free for the new one
        self._buffer = buffer
        self._start = buffer[0].revision - 1 if buffer else self.follower.position
        if self._task is not None:
            self._task.cancel()  # the load in progress read a registry that may be gone
        self._task = asyncio.create_task(self._load(), name="agentroster-read-model-load")
        self._wake()

    async def _load(self) -> None:
        while True:
            try:
                await self._load_once()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("read model: loading failed, retrying: %s", exc)
                await asyncio.sleep(RETRY_S)

    async def _load_once(self) -> None:
        started = time.monotonic()
        index = AgentIndex()
        cursor: str | None = None
        loaded_at = 0
        while True:
            page = await self.reader.list_agents("all", self.load_page, cursor)
            loaded_at = max(loaded_at, page.revision)
            # terms and texts as stored (read after the page: an agent changed in between is
            # then newer than the page, and its event, after R_i, puts it right)
            stored = await self.reader.search_fields([r.agent_id for r in page.agents])
            for record, fields in zip(page.agents, stored, strict=True):
                index.put(entry_from_record(record, fields))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        # complete once every event up to the last page's revision has been delivered;
        # a revision taken without an event (set after a data loss) has none to wait for
        while self.follower.position < loaded_at and await self._events_until(loaded_at):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), 1.0)
        buffer = self._buffer or []
        revision = max(loaded_at, self._start)
        for event in buffer:
            held = index.get(event.agent_id)
            if held is None or held.revision < event.revision:
                if event.kind == "deleted":
                    index.remove(event.agent_id)
                else:
                    index.put(entry_from_record(record_from_event(event)))
            revision = max(revision, event.revision)
        self.index, self.revision, self._buffer = index, revision, None
        self._ready = True
        # the loaded agents live long: a full collection traversing them all paused the event
        # loop for most of a second at 100,000 agents (p99 of pages); frozen, they are skipped
        # (freed by reference counting when replaced, as they hold no cycles)
        gc.freeze()
        self.loads += 1
        self._wake()
        log.info(
            "read model: %d agents loaded at revision %d in %.2fs",
            len(index),
            revision,
            time.monotonic() - started,
        )

    async def _events_until(self, revision: int) -> bool:
        """Whether the outbox holds events after the follower's position up to `revision`."""
        after = await self.outbox.after(self.follower.position, 1, None)
        return bool(after) and after[0].revision <= revision

    # --- reading ----------------------------------------------------------------------------

    def page(
        self, status: str, limit: int, cursor: str | None, filters: Filters
    ) -> tuple[int, Page]:
        """A page from memory and the revision it shows exactly (only when `ready`)."""
        if not self._ready:
            raise RuntimeError("the read model is not ready")
        return self.revision, self.index.page(status, limit, cursor, filters, self.scan_budget)

    async def reach(self, revision: int, timeout_s: float) -> None:
        """Return once the model is ready at `revision` or later.

        Raises `RevisionNotReached` after `timeout_s`, `TooManyWaiting` when `max_waiting`
        requests already wait (each holds a connection and a task: bounded per process).
        """
        if self._ready and self.revision >= revision:
            return
        # worth waiting only for a revision the registry has: a revision it has not reached
        # (a hostile or stale one) is refused at once and holds no waiting slot
        registry = await self.reader.revision()
        if revision > registry:
            raise RevisionAhead(revision, registry)
        if self._waiting >= self.max_waiting:
            raise TooManyWaiting(self.max_waiting)
        self._waiting += 1
        started = time.monotonic()
        deadline = started + timeout_s
        try:
            while not (self._ready and self.revision >= revision):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RevisionNotReached(
                        revision, self.revision, round(time.monotonic() - started, 3)
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._advanced.wait(), left)
        finally:
            self._waiting -= 1
