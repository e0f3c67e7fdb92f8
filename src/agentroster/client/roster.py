"""Roster: an in-process, always-current copy of the registry (or of a filtered part of it).

    async with Roster("http://registry:8000", skill="forecast") as roster:
        agents = roster.find(skill="forecast", labels={"region": "eu"})   # local, microseconds
        async for change in roster.changes():
            print(change.kind, change.agent_id, change.after and change.after.status)

It lists the agents once (`GET /v1/agents?status=all`, every page) and then follows the
registry's events after that list (`GET /v1/events?since=R`, server-sent events), the list +
watch of Kubernetes informers. After a disconnect it resumes after the last revision it
applied (`since` and `Last-Event-ID`), so it sees every event once; it lists again by itself
when the API answers 410 (`events-expired`: the events it needs are no longer kept;
`revision-ahead`: Redis lost the registry's data) or when the revisions it receives skip
(the registry's revisions are contiguous: a jump means a new keyspace after a data loss).

Why the end state is exact although list pages are not one snapshot: page i is a consistent
read at revision R_i, with R_1 <= R_2 <= ... <= R_n, and the Roster follows events after R_1.
Every agent record carries the revision of the agent's last event. For an agent listed on page
i with record revision r: every event of it at or below r is in the record, and it has no event
in (r, R_i] (r is its last one at R_i), so "apply its events above r, skip those at or below"
gives exactly its events after R_i, applied to its state at R_i. An agent on no page was not in
the list's scope when its page was read (at R_i); all its events after R_1 are applied in
order, so its state after the last one at or below R_i is its state at R_i (out of scope), and
every later event is applied as it comes. So once the Roster has applied the events up to
max(R_i) it holds the registry as of its revision, and stays so event by event (`synced()`).

With `events_from` (a broker URL) the events come from the registry's event log stream instead
(`client/_amqp_events.py`); the rules above are the same, the position is a stream offset.

Items are the client's `Agent` models. Events carry an agent's status, live instances, view
and card but not its lease or first/last seen: those fields are as the last list read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import httpx
import orjson
from aio_pika.exceptions import AMQPError

from agentroster import tracing
from agentroster.client._amqp_events import stream_events
from agentroster.client._changes import MAX_PENDING, Changes, ChangesLost, RosterClosed
from agentroster.client._listing import RevisionWentBack, list_all
from agentroster.client._sse import SseTooLarge, sse_events
from agentroster.client._state import (
    BadEvent,
    Change,
    RosterState,
    check_status,
    make_filters,
    parse_event,
)
from agentroster.client.discovery import (
    DEFAULT_TIMEOUT_S,
    DiscoveryError,
)
from agentroster.client.models import Agent
from agentroster.contracts import Topology

__all__ = ["Change", "Changes", "ChangesLost", "Roster", "RosterClosed"]

log = logging.getLogger(__name__)

#: The API pings idle streams every 15 s: three missed pings mean the connection is dead.
IDLE_TIMEOUT_S = 45.0
#: The first reconnection delay; it doubles per failure up to `backoff_max_s`, with jitter.
BACKOFF_BASE_S = 0.1
#: The largest event line accepted (cards are at most 64 KiB by default; events carry one).
MAX_EVENT_BYTES = 1 << 20
#: How long before a list its first stream read starts (the broker's clock may differ).
STREAM_MARGIN = timedelta(seconds=60)
#: HTTP statuses that will not change by retrying the first list (a filter the API refuses).
_PERMANENT = frozenset({400, 401, 403, 404, 405, 422})


class _Relist(Exception):
    """The events cannot continue the Roster's copy: list again."""


class Roster:
    """A live copy of a registry's agents matching the given filters; see the module doc.

    The filters are those of `GET /v1/agents` (`skill` may be several, all required; `labels`
    all match; `q` searches name, description and skills), and `status` (`all` by default:
    an agent going offline stays, with status `offline`). `http_transport` replaces the
    network (`httpx.MockTransport` in tests). With `events_from` (a broker URL) the events
    come from the registry's event log stream (`<prefix>.events.log`, readable by an agent
    granted `--subscribe`) instead of `GET /v1/events`; the list is still read over HTTP.
    Use it as an async context manager: entering waits until the first list is applied
    (`sync_timeout`), leaving stops it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        skill: str | Iterable[str] | None = None,
        tag: str | None = None,
        protocol: str | None = None,
        transport: str | None = None,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        verified: bool | None = None,
        status: str = "all",
        page_size: int = 1000,
        timeout: float = DEFAULT_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        backoff_max_s: float = 30.0,
        sync_timeout: float | None = 60.0,
        max_event_bytes: int = MAX_EVENT_BYTES,
        http_transport: httpx.AsyncBaseTransport | None = None,
        events_from: str | None = None,
        prefix: str = "agentroster",
    ) -> None:
        self._filters = make_filters(
            skill=skill,
            tag=tag,
            protocol=protocol,
            transport=transport,
            q=q,
            labels=labels,
            verified=verified,
        )
        self._state = RosterState(self._filters, check_status(status))
        self._page_size = page_size
        self._timeout = timeout
        self._idle_timeout = idle_timeout_s
        self._backoff_max = backoff_max_s
        self._sync_timeout = sync_timeout
        self._max_event_bytes = max_event_bytes
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=http_transport)
        self._broker_url = events_from
        self._prefix = prefix
        self._events_exchange = Topology(prefix).events_exchange
        self._listed_at = datetime.now(UTC)
        self._stream_offset: int | None = None
        self._synced = asyncio.Event()
        self._sync_target = 0
        self._task: asyncio.Task[None] | None = None
        self._streams: set[Changes] = set()
        self._callbacks: list[Callable[[Change], object]] = []
        self._waiters: list[tuple[str, str, asyncio.Future[Agent]]] = []
        self._closed = False
        #: Lists made (1 after the first); reconnections after a failure (for tests, metrics).
        self.lists = 0
        self.reconnects = 0

    # -- reading -------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The registry revision the Roster's copy is at."""
        return self._state.revision

    @property
    def is_synced(self) -> bool:
        """Whether the first list and the events up to its revisions are applied."""
        return self._synced.is_set()

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, agent_id: object) -> bool:
        return isinstance(agent_id, str) and self._state.get(agent_id) is not None

    def get(self, agent_id: str) -> Agent | None:
        """The agent with this id, if the Roster holds it."""
        return self._state.get(agent_id)

    def agents(self) -> list[Agent]:
        """Every agent held, in agent id order."""
        return self._state.agents()

    def find(
        self,
        *,
        skill: str | Iterable[str] | None = None,
        tag: str | None = None,
        protocol: str | None = None,
        transport: str | None = None,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        verified: bool | None = None,
        status: str = "live",
        signature: str | None = None,
    ) -> list[Agent]:
        """The agents held that match, in agent id order: `GET /v1/agents`'s rules, locally.

        `status` is `live` by default, as in the API; `all` for any. `signature` is `valid`,
        `invalid` or `unsigned` (the registry's check of the card's signatures).
        """
        filters = make_filters(
            skill=skill,
            tag=tag,
            protocol=protocol,
            transport=transport,
            q=q,
            labels=labels,
            verified=verified,
            signature=signature,
        )
        return self._state.find(filters, check_status(status))

    # -- following -----------------------------------------------------------------------

    def changes(self, max_pending: int = MAX_PENDING) -> Changes:
        """Every change from now on, in revision order (see `Changes` for the bound)."""
        stream = Changes(max_pending, self._streams.discard)
        if self._closed:
            stream.close()
        else:
            self._streams.add(stream)
        return stream

    def on_change(self, callback: Callable[[Change], object]) -> Callable[[], None]:
        """Call `callback(change)` for every change (errors are logged); returns an undo."""
        self._callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    async def wait_for(
        self,
        agent_id: str,
        status: str = "live",
        timeout: float | None = None,  # noqa: ASYNC109 - the common case, said in one call
    ) -> Agent:
        """The agent once the Roster holds it with `status`; `TimeoutError` after `timeout`."""
        agent = self._state.get(agent_id)
        if agent is not None and agent.status == status:
            return agent
        if self._closed:
            raise RosterClosed("the Roster is closed")
        waiter: asyncio.Future[Agent] = asyncio.get_running_loop().create_future()
        entry = (agent_id, status, waiter)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    async def synced(self) -> None:
        """Wait until the first list and the events up to its revisions are applied."""
        await self._synced.wait()

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listing and following; returns once synced (`sync_timeout`).

        A first list the API refuses (an invalid filter: 4xx) is raised as `DiscoveryError`;
        an unreachable API is retried until `sync_timeout`, then `TimeoutError`.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="agentroster-roster")
        synced = asyncio.create_task(self._synced.wait())
        try:
            done, _ = await asyncio.wait(
                {synced, self._task},
                timeout=self._sync_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            synced.cancel()
        if self._task in done:
            await self._task  # raises what ended it
        if not self._synced.is_set():
            raise TimeoutError(f"the Roster did not sync within {self._sync_timeout} s")

    async def aclose(self) -> None:
        """Stop following, end the change iterators, fail the waiters; idempotent."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()
        for _, _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RosterClosed("the Roster was closed"))
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        """List, follow, and again: until closed. Failures wait a jittered, doubling delay."""
        failures = 0
        must_list = True
        while True:
            try:
                if must_list:
                    await self._list()
                    must_list = False
                if await self._follow():
                    failures = 0  # it delivered events: reconnect at once
                else:
                    failures += 1
            except _Relist as exc:
                log.info("roster: listing again at revision %d: %s", self.revision, exc)
                must_list = True
                failures += 1
            except DiscoveryError as exc:
                if not self._synced.is_set() and exc.status in _PERMANENT:
                    raise
                log.warning("roster: %s", exc)
                failures += 1
            except (SseTooLarge, BadEvent) as exc:
                # the same stream would send it again: list, and follow from past it
                log.warning("roster: unreadable event after revision %d: %s", self.revision, exc)
                must_list = True
                failures += 1
            except (httpx.HTTPError, AMQPError, OSError) as exc:
                log.info("roster: stream interrupted at revision %d: %r", self.revision, exc)
                failures += 1
            except Exception:
                if not self._synced.is_set():
                    raise
                # whatever went wrong, a copy that stops following is worse: list again
                log.exception("roster: unexpected error at revision %d", self.revision)
                must_list = True
                failures += 1
            self.reconnects += 1
            if failures:
                cap = min(self._backoff_max, BACKOFF_BASE_S * 2 ** (failures - 1))
                await asyncio.sleep(cap * random.uniform(0.5, 1.0))

    async def _list(self) -> None:
        """Read every page; replace the copy; follow from the first page's revision."""
        self._listed_at = datetime.now(UTC)
        self._stream_offset = None
        try:
            listing = await list_all(self._http, self._filters, self._page_size)
        except RevisionWentBack as exc:
            raise _Relist(str(exc)) from None
        changes = self._state.relist(listing.agents, listing.first)
        self.lists += 1
        self._sync_target = listing.top
        if self.lists > 1:  # the first list is the starting content, not a change of it
            for change in changes:
                self._publish(change)
        else:  # but whoever waits for an agent it holds has waited enough
            for agent_id, status, waiter in self._waiters:
                agent = self._state.get(agent_id)
                if agent is not None and agent.status == status and not waiter.done():
                    waiter.set_result(agent)
        self._check_synced()

    def _apply(self, revision: int, kind: str, data: str | bytes) -> bool:
        """Apply one event unless already applied; whether it was new. `_Relist` on a jump."""
        if revision <= self._state.revision:
            return False  # already applied (a replay overlapping the live events)
        if revision != self._state.revision + 1:
            raise _Relist(f"revision {self._state.revision} was followed by {revision}")
        kind, body = parse_event(kind, data)
        if body.revision != revision:
            raise BadEvent(f"event id {revision} carries revision {body.revision}")
        change = self._state.apply(kind, body)
        if change is not None:
            self._publish(change)
        self._check_synced()
        return True

    async def _follow(self) -> bool:
        """Apply the events after the copy's revision until the stream ends; whether any came."""
        if self._broker_url is not None:
            return await self._follow_stream(self._broker_url)
        since = self._state.revision
        timeout = httpx.Timeout(self._timeout, read=self._idle_timeout)
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(since)}
        params = {"since": since}
        received = False
        async with self._http.stream(
            "GET", "/v1/events", params=params, headers=headers, timeout=timeout
        ) as response:
            if response.status_code == 410:
                await response.aread()
                raise _Relist(str(DiscoveryError.from_response(response)))
            if not response.is_success:
                await response.aread()
                raise DiscoveryError.from_response(response)
            events = sse_events(response.aiter_bytes(), max_line=self._max_event_bytes)
            async for sse in events:
                try:
                    revision = int(sse.id or "")
                except ValueError:
                    raise BadEvent(f"an event without a revision id: {sse.id!r}") from None
                received |= self._apply(revision, sse.event, sse.data)
        return received

    async def _follow_stream(self, broker_url: str) -> bool:
        """`_follow` from the event log stream: from the offset after the last event applied,
        or, after a list, from a little before the list began."""
        start: int | datetime = (
            self._stream_offset + 1
            if self._stream_offset is not None
            else self._listed_at - STREAM_MARGIN
        )
        received = False
        traced = tracing.enabled()  # once per connection (asking looks into os.environ)
        async for event in stream_events(broker_url, self._prefix, start):
            try:
                revision = int(orjson.loads(event.body)["revision"])
            except (ValueError, KeyError, TypeError):
                raise BadEvent(f"a stream event without a revision at {event.offset}") from None
            # a CONSUMER span in the trace of the command that caused the event (tracing on)
            with tracing.processing(
                self._events_exchange, event.routing_key, event.headers, None, traced=traced
            ):
                received |= self._apply(revision, event.kind, event.body)
            self._stream_offset = event.offset
        return received

    def _check_synced(self) -> None:
        if not self._synced.is_set() and self._state.revision >= self._sync_target:
            self._synced.set()

    def _publish(self, change: Change) -> None:
        for stream in list(self._streams):
            stream.put(change)
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:
                log.exception("roster: a change callback failed")
        after = change.after
        if after is not None and self._waiters:
            for agent_id, status, waiter in self._waiters:
                if agent_id == after.agent_id and status == after.status and not waiter.done():
                    waiter.set_result(after)
