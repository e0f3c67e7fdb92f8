"""Readiness checks: does Redis answer, does RabbitMQ answer; which holds on expiry are on.

Each check returns `"ok"` or what went wrong, within a short timeout, and never raises: a
probe that hangs or fails with a 500 would tell the orchestrator nothing. What went wrong is
shown without the dependency's address (`hide_addresses`) unless the settings ask for it:
anyone may call /readyz.

The broker check keeps one AMQP connection between probes (a connection per probe would churn
the broker and flood its log) and proves the broker still answers by opening and closing a
channel on it: a round trip, where an open socket alone proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection
from redis.asyncio import Redis

from agentroster.store.keys import Keys

OK = "ok"
#: How long one check may take before it counts as failed.
PROBE_TIMEOUT_S = 2.0


#: What names a place in an error message: a URL, an ('ip', port) tuple, host:port, [ipv6].
_ADDRESS = re.compile(
    r"[a-zA-Z][\w+.-]*://\S+"
    r"|\(\s*'[^']*'\s*,\s*\d+[^)]*\)"
    r"|\[[0-9a-fA-F:.]+\](?::\d+)?"
    r"|\b[\w.-]+:\d{1,5}\b"
)
HIDDEN = "<address>"


def hide_addresses(text: str, hosts: Iterable[str] = ()) -> str:
    """`text` without the addresses it names: URLs, host:port, ('ip', port), and `hosts`."""
    text = _ADDRESS.sub(HIDDEN, text)
    for host in hosts:
        if host:
            text = text.replace(host, HIDDEN)
    return text


def url_hosts(*urls: str) -> list[str]:
    """The host names of `urls` (to hide them where an error message names them)."""
    hosts = []
    for url in urls:
        with contextlib.suppress(ValueError):
            if host := urlsplit(url).hostname:
                hosts.append(host)
    return hosts


def describe(exc: BaseException) -> str:
    """An error as a check reports it: type and message, on one line."""
    text = str(exc).strip().replace("\n", " ") or "no answer"
    return f"{type(exc).__name__}: {text}"[:500]


#: (ms left of the recovery window, leases the brake holds, ms left of its hold).
SafeguardValues = tuple[int, int, int]


async def check_redis(
    redis: Redis, keys: Keys, timeout_s: float = PROBE_TIMEOUT_S
) -> tuple[str, SafeguardValues | None]:
    """PING Redis and read the holds on expiry in force, in one round trip.

    Returns `"ok"` and the holds, or what went wrong and None.
    """
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.ping()
            pipe.pttl(keys.recovering)
            pipe.get(keys.braking)
            pipe.pttl(keys.braking)
            _, recovery, held, brake = await asyncio.wait_for(pipe.execute(), timeout_s)
    except TimeoutError:
        return f"TimeoutError: no answer within {timeout_s:g} s", None
    except Exception as exc:
        return describe(exc), None
    return OK, (max(recovery, 0), int(held or 0), max(brake, 0))


class BrokerProbe:
    """Checks that RabbitMQ answers, over one connection kept between checks."""

    def __init__(
        self,
        broker_url: str,
        *,
        timeout_s: float = PROBE_TIMEOUT_S,
        connection_name: str = "agentroster-api-readyz",
    ) -> None:
        self.broker_url = broker_url
        self.timeout_s = timeout_s
        self.connection_name = connection_name
        self._connection: AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> str:
        """`"ok"` when the broker answered a channel open and close, else what went wrong."""
        async with self._lock:  # concurrent probes share one attempt's connection
            try:
                await asyncio.wait_for(self._round_trip(), self.timeout_s)
            except TimeoutError:
                await self._drop()
                return f"TimeoutError: no answer within {self.timeout_s:g} s"
            except Exception as exc:
                await self._drop()
                return describe(exc)
            return OK

    async def _round_trip(self) -> None:
        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(
                self.broker_url,
                timeout=self.timeout_s,
                client_properties={"connection_name": self.connection_name},
            )
        channel = await self._connection.channel(publisher_confirms=False)
        await channel.close()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.timeout_s)

    async def close(self) -> None:
        """Close the kept connection."""
        async with self._lock:
            await self._drop()
