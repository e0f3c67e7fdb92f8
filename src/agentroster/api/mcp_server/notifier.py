"""Tell MCP sessions that the roster changed, fed by the API process's one outbox follower.

A session is *watched* once it lists resources or their templates, or subscribes to a card;
from then on every event of the registry gives it `notifications/resources/list_changed`, and an
event of an agent whose card it subscribed to gives it `notifications/resources/updated` with
that card's URI. No session polls Redis: the follower's deliveries (the same that feed event
streams and the read model) are the only source.

What is bounded, and how:

- the follower's `deliver` never waits: it marks the sessions concerned and starts a sender
  task for each that has none running. Notifications coalesce: while a session's are pending,
  more events add nothing but card URIs it subscribed to (at most `max_subscriptions` per
  session), so memory does not grow with the event rate;
- each session has at most one sender task, so sessions are told independently; each send is
  bounded by `send_timeout_s`, and a session whose client does not take its notifications in
  time, or whose transport is closed, is forgotten (its client lists again after
  reconnecting): a slow session delays no other;
- sessions are held weakly: one that ends is dropped with its state, whenever it ends.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from mcp.server.session import ServerSession
from pydantic import AnyUrl

from agentroster.api.follower import OutboxFollower
from agentroster.store.outbox import OutboxEvent

log = logging.getLogger(__name__)

#: Card subscriptions one session may hold.
MAX_SUBSCRIPTIONS = 1000
#: How long one session's notifications may take to send before the session is forgotten.
SEND_TIMEOUT_S = 5.0
#: The card URI of an agent (the resource template of `resources.py`).
CARD_URI = "agentroster://agents/{agent_id}/card"


class TooManySubscriptions(Exception):
    """The session already holds its maximum of card subscriptions."""


@dataclass(slots=True)
class _Watch:
    """What one session subscribed to and what it has not been told yet."""

    subscriptions: set[str] = field(default_factory=set)
    list_changed: bool = False
    updated: set[str] = field(default_factory=set)
    #: The task telling the session now, if any.
    sending: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """Whether the session has something it has not been told yet."""
        return self.list_changed or bool(self.updated)


class RosterNotifier:
    """Subscribes to the follower once and notifies every watching MCP session."""

    def __init__(
        self,
        follower: OutboxFollower,
        *,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.follower = follower
        self.max_subscriptions = max_subscriptions
        self.send_timeout_s = send_timeout_s
        self._watches: weakref.WeakKeyDictionary[ServerSession, _Watch] = (
            weakref.WeakKeyDictionary()
        )
        self._started = False

    @property
    def sessions(self) -> int:
        """Sessions watched now."""
        return len(self._watches)

    async def start(self) -> None:
        """Receive the follower's events from now on."""
        self.follower.subscribe(self)
        self._started = True

    async def stop(self) -> None:
        """Receive and send nothing more."""
        self.follower.unsubscribe(self)
        self._started = False
        senders = [watch.sending for watch in self._watches.values() if watch.sending]
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)

    # --- sessions ---------------------------------------------------------------------------

    def watch(self, session: ServerSession) -> None:
        """Tell `session` from now on whenever the list of agents changes."""
        if session not in self._watches:
            self._watches[session] = _Watch()

    def subscribe(self, session: ServerSession, agent_id: str) -> None:
        """Tell `session` whenever `agent_id` changes (and whenever the list does)."""
        self.watch(session)
        subscriptions = self._watches[session].subscriptions
        if agent_id not in subscriptions and len(subscriptions) >= self.max_subscriptions:
            raise TooManySubscriptions(
                f"this session already subscribes to {self.max_subscriptions} cards; "
                "unsubscribe from some first"
            )
        subscriptions.add(agent_id)

    def unsubscribe(self, session: ServerSession, agent_id: str) -> None:
        """Stop telling `session` about `agent_id` (no error if it was not subscribed)."""
        watch = self._watches.get(session)
        if watch is not None:
            watch.subscriptions.discard(agent_id)

    # --- the follower's side ----------------------------------------------------------------

    def deliver(self, events: Sequence[OutboxEvent]) -> None:
        """From the follower: mark every watching session; the sender tells them."""
        if not events:
            return
        changed = {event.agent_id for event in events}
        for session, watch in list(self._watches.items()):
            watch.list_changed = True
            watch.updated |= watch.subscriptions & changed
            self._send(session, watch)

    def reset(self) -> None:
        """From the follower: Redis lost its data; every list may have changed."""
        for session, watch in list(self._watches.items()):
            watch.list_changed = True
            watch.updated |= watch.subscriptions
            self._send(session, watch)

    # --- sending ----------------------------------------------------------------------------

    def _send(self, session: ServerSession, watch: _Watch) -> None:
        """Tell `session` what is pending, unless its sender runs (it will see it then)."""
        if self._started and watch.sending is None:
            watch.sending = asyncio.create_task(
                self._tell(session, watch), name="agentroster-mcp-notify"
            )

    async def _tell(self, session: ServerSession, watch: _Watch) -> None:
        try:
            while watch.pending:
                list_changed, watch.list_changed = watch.list_changed, False
                updated, watch.updated = watch.updated, set()
                async with asyncio.timeout(self.send_timeout_s):
                    if list_changed:
                        await session.send_resource_list_changed()
                    for agent_id in sorted(updated):
                        uri = AnyUrl(CARD_URI.format(agent_id=agent_id))
                        await session.send_resource_updated(uri)
        except Exception as exc:  # closed transport, a client not reading, ...
            log.info("MCP notifications: forgetting a session that could not be told: %r", exc)
            self._watches.pop(session, None)
        finally:
            watch.sending = None
