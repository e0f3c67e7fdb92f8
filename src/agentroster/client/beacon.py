"""Make an agent known to the registry: `Beacon` for services, `announce()` for ephemeral workers.

async with Beacon(card, broker_url) as beacon:   # registers
    await serve()                                 # heartbeats run in the background
                                                  # deregisters on exit, SIGTERM or SIGINT

announcement = await announce(card, ttl_s=300)    # a KEDA worker: one registration
...; await announcement.renew()                   # per job
await announcement.close()                        # deregister
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import signal
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from agentroster.client._cards import card_to_dict
from agentroster.client._publisher import publisher_for
from agentroster.client._signals import HUB
from agentroster.contracts import (
    Deregister,
    Endpoint,
    Heartbeat,
    Register,
    card_digest,
    derive_agent_id,
    new_instance_id,
)
from agentroster.contracts.topology import DEFAULT_BROKER_URL, DEFAULT_PREFIX

log = logging.getLogger(__name__)


class Announcement:
    """One instance of an agent, registered with the registry; renew it, close it.

    The base of `Beacon`; `announce()` returns one for an ephemeral worker. `broker_url` and
    `prefix` default to `AGENTROSTER_BROKER_URL` and `AGENTROSTER_PREFIX` (else the local broker
    and `agentroster`). Every command carries the broker URL's user name as its AMQP `user_id`
    (RabbitMQ validates it; the registry binds the agent to it) unless `user_id` names another
    (`""`: none). The agent needs only *write* permission on the commands exchange: a refused
    command raises `CommandRefused`, a missing exchange `RegistryNotDeclared`.
    """

    def __init__(
        self,
        card: Any,
        broker_url: str | None = None,
        *,
        ttl_s: float,
        agent_id: str | None = None,
        instance_id: str | None = None,
        interval_s: float | None = None,
        idle_ttl_s: float | None = None,
        endpoints: list[Endpoint] | None = None,
        labels: dict[str, str] | None = None,
        prefix: str | None = None,
        user_id: str | None = None,
        verify: bool = False,
    ) -> None:
        self.card = card_to_dict(card)
        name = self.card.get("name")
        if agent_id is None and not isinstance(name, str):
            raise ValueError("the card has no name to derive agent_id from; pass agent_id")
        self.agent_id = agent_id or derive_agent_id(str(name))
        self.instance_id = instance_id or new_instance_id()
        self.ttl_s = ttl_s
        self.interval_s = interval_s
        self.idle_ttl_s = idle_ttl_s
        self.endpoints = endpoints
        self.labels = labels
        #: Ask the registry to fetch the agent's well-known card and record whether it matches.
        self.verify = verify
        self.digest = card_digest(self.card)
        self._seq = itertools.count(1)
        self._publisher = publisher_for(
            broker_url or os.environ.get("AGENTROSTER_BROKER_URL", DEFAULT_BROKER_URL),
            prefix=prefix or os.environ.get("AGENTROSTER_PREFIX", DEFAULT_PREFIX),
            user_id=user_id,
        )
        self._registered = False

    async def open(self) -> Self:
        """Connect and register; raises if the broker is down or nothing routes the command.

        `RegistryNotDeclared`: no registry declared the commands exchange; `CommandRefused`:
        the broker user may not publish this agent's commands.
        """
        await self._publisher.connect()
        try:
            await self.register()
        except BaseException:
            await self._publisher.close()  # nobody holds this instance to close it
            raise
        return self

    async def register(self) -> None:
        """Publish a full registration (card, lease settings); it also renews the lease."""
        await self._publisher.publish(
            "register",
            Register(
                agent_id=self.agent_id,
                instance_id=self.instance_id,
                seq=next(self._seq),
                ttl_s=self.ttl_s,
                interval_s=self.interval_s,
                idle_ttl_s=self.idle_ttl_s,
                card=self.card,
                endpoints=self.endpoints,
                labels=self.labels,
                verify=self.verify,
                sent_at=datetime.now(UTC),
            ),
        )
        self._registered = True

    async def renew(self) -> None:
        """Renew the lease with a small heartbeat (the card is referred to by its digest)."""
        await self._publisher.publish(
            "heartbeat",
            Heartbeat(
                agent_id=self.agent_id,
                instance_id=self.instance_id,
                seq=next(self._seq),
                ttl_s=self.ttl_s,
                card_digest=self.digest,
                sent_at=datetime.now(UTC),
            ),
        )

    async def deregister(self, reason: str = "shutdown") -> None:
        """End this instance's lease (other instances of the agent are untouched)."""
        if not self._registered:
            return
        self._registered = False
        await self._publisher.publish(
            "deregister",
            Deregister(
                agent_id=self.agent_id,
                instance_id=self.instance_id,
                seq=next(self._seq),
                reason=reason,
                sent_at=datetime.now(UTC),
            ),
        )

    async def close(self, reason: str = "shutdown") -> None:
        """Deregister (best effort: the lease expires anyway) and disconnect."""
        try:
            await self.deregister(reason)
        except Exception as exc:
            log.warning("could not deregister %s/%s: %s", self.agent_id, self.instance_id, exc)
        finally:
            await self._publisher.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def announce(
    card: Any, broker_url: str | None = None, *, ttl_s: float, **options: Any
) -> Announcement:
    """Register an ephemeral instance once, with an explicit TTL; renew it per job."""
    return await Announcement(card, broker_url, ttl_s=ttl_s, **options).open()


class Beacon(Announcement):
    """Register on enter, heartbeat every `interval_s` (jittered), deregister on exit or signal.

    Every `full_every` beats (and after any failure) the full registration is sent instead of a
    heartbeat, so a registry that lost its data heals by itself; by default that is once per
    TTL (every 3rd beat with the default TTL of 3 intervals), within the registry's recovery
    window of 2 TTLs. A failed beat is logged and retried with backoff; missed beats are not
    queued, the next one replaces them.
    """

    def __init__(
        self,
        card: Any,
        broker_url: str | None = None,
        *,
        interval_s: float = 10.0,
        ttl_s: float | None = None,
        full_every: int | None = None,
        handle_signals: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            card, broker_url, ttl_s=ttl_s or 3 * interval_s, interval_s=interval_s, **options
        )
        self.full_every = full_every or max(1, int(self.ttl_s // interval_s))
        self.handle_signals = handle_signals
        self._loop_task: asyncio.Task[None] | None = None
        self._waiters = 0
        self._signalled = asyncio.Event()
        self._on_signals = False  # joined the process-wide handler (client/_signals.py)

    async def open(self) -> Self:
        """Register, start heartbeating, and deregister on SIGTERM/SIGINT.

        Every Beacon of the process deregisters on the signal: they share one handler.
        """
        await super().open()
        self._loop_task = asyncio.create_task(self._beat(), name=f"beacon-{self.agent_id}")
        if self.handle_signals:
            self._on_signals = HUB.join(self)
        return self

    async def wait_for_signal(self) -> None:
        """Return when SIGTERM or SIGINT arrived (after the instance deregistered).

        A program that waits here exits on its own; one that does not gets the signal again,
        with its previous handling, once the instance deregistered.
        """
        if not self._on_signals and not self._signalled.is_set():
            raise RuntimeError(
                "no signal handler is installed (handle_signals=False, or not the main thread)"
            )
        self._waiters += 1
        try:
            await self._signalled.wait()
        finally:
            self._waiters -= 1

    async def close(self, reason: str = "shutdown") -> None:
        """Stop heartbeating, deregister, disconnect, restore signal handling."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._on_signals:
            self._on_signals = False
            HUB.leave(self)
        await super().close(reason)

    async def _beat(self) -> None:
        assert self.interval_s is not None
        failures = 0
        for beat in itertools.count(1):
            if failures:
                delay = min(self.interval_s, 0.5 * 2 ** min(failures, 10))
            else:
                delay = self.interval_s * random.uniform(0.9, 1.1)
            # a reconnection ends the wait: beat at once, the lease may be close to its end
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._publisher.reconnected.wait(), delay)
            self._publisher.reconnected.clear()
            try:
                if failures or beat % self.full_every == 0:
                    await self.register()
                else:
                    await self.renew()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("heartbeat of %s failed (%s); retrying", self.agent_id, exc)

    def waits_for_signal(self) -> bool:
        """Whether a program waits in `wait_for_signal()` (it then exits by itself)."""
        return self._waiters > 0

    async def close_on_signal(self, sig: signal.Signals) -> None:
        """Deregister because of `sig` (the process-wide handler calls this); never raises."""
        log.info("%s: deregistering %s/%s", sig.name, self.agent_id, self.instance_id)
        self._on_signals = False
        try:
            await self.close(reason=sig.name.lower())
        except Exception as exc:  # the signal must still take effect
            log.warning("closing %s on %s failed: %s", self.agent_id, sig.name, exc)

    def signal_received(self) -> None:
        """Wake whoever waits in `wait_for_signal()` (called once every Beacon closed)."""
        self._signalled.set()
