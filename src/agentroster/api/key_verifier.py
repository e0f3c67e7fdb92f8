"""Checking presented keys: a short per-process cache over Redis, and rate limits.

The hot path, for a key seen in the last `AGENTROSTER_KEY_CACHE_S`: one dict lookup, one
SHA-256 and a constant-time compare, then one token bucket. Revocation needs no messaging
between API processes: no process trusts what it read of a key for longer than the cache
time (at most 1 s), so a revoked key is refused everywhere within it. Pushing revocations
(pub/sub, client-side caching) would be faster but adds a way to miss one; a bound on
staleness cannot be missed.

What a bad key costs is bounded: a malformed token is refused before any I/O; an unknown id
costs one Redis read, then is remembered as unknown for the cache time (a bounded number of
them); concurrent requests with one id share one read; and each client address may fail only
`FAILURES_PER_S` times a second (burst `FAILURE_BURST`) before its next uncached key is
refused with 429 without a read. Keys already read still work from that address (their
secret is checked against what was read before re-reading them), so a client that shares its
address with an attacker (a NAT) keeps going.
Redis down while a key must be read: the error propagates (503 store-unavailable): never
accepted on a guess.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agentroster.api.auth import BOOTSTRAP, Principal, RateLimited, Scope, Unauthenticated
from agentroster.api.rate_limit import RateLimiter
from agentroster.store.api_keys import KeyRecord, parse_token, secret_digest

#: Failed authentications one client address may make per second, and at once.
FAILURES_PER_S = 1.0
FAILURE_BURST = 20
#: Keys remembered at most, known and unknown apart (unknown ones cannot push known ones out).
MAX_CACHED = 10_000
#: Client addresses whose failures are counted at most.
MAX_CLIENTS = 10_000

_SCOPES = frozenset(scope.value for scope in Scope)
_INVALID = "the API key is not valid (unknown or revoked)"


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    principal: Principal | None  # None: no such key, or revoked
    digest: str


class KeyVerifier:
    """Turns a presented token into a `Principal`, or refuses it (401, 429)."""

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[KeyRecord | None]],
        *,
        cache_s: float,
        rate_per_s: float,
        burst: int,
        bootstrap: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = MAX_CACHED,
    ) -> None:
        self._lookup = lookup
        self._cache_s = cache_s
        self._clock = clock
        self._bootstrap = bootstrap.encode() if bootstrap else None
        self._max = max_cached
        self._known: OrderedDict[str, _Entry] = OrderedDict()
        self._unknown: OrderedDict[str, _Entry] = OrderedDict()
        self._reading: dict[str, asyncio.Future[tuple[KeyRecord | None, float]]] = {}
        self.requests = RateLimiter(rate_per_s, burst, clock=clock)
        self.failures = RateLimiter(
            FAILURES_PER_S, FAILURE_BURST, max_buckets=MAX_CLIENTS, clock=clock
        )

    async def verify(self, token: str, client: str) -> Principal:
        """The principal of `token`, its request counted against the key's rate.

        Raises `Unauthenticated` (unknown, revoked, malformed), `RateLimited` (the key over
        its rate, or `client` over its failures), or Redis's error when the key must be read
        and cannot be.
        """
        principal = await self._principal(token, client)
        wait = self.requests.take(principal.key_id)
        if wait:
            raise RateLimited(
                f"key {principal.key_id!r} is over its rate of requests to this API process",
                _retry_after(wait),
            )
        return principal

    def cached_principal(self, token: str) -> Principal | None:
        """The principal of `token` when it is known without I/O: the bootstrap key, or a key
        read less than the cache time ago whose secret matches. None for anything else, which
        `verify` decides (a read, a refusal). Counts nothing: the caller takes its request from
        `requests` (and on a 429 leaves it to `verify`).
        """
        if self._bootstrap is not None and hmac.compare_digest(token.encode(), self._bootstrap):
            return BOOTSTRAP
        parsed = parse_token(token)
        if parsed is None:
            return None
        entry = self._known.get(parsed[0])
        if (
            entry is None
            or entry.principal is None
            or entry.expires <= self._clock()
            or not _matches(parsed[1], entry)
        ):
            return None
        return entry.principal

    async def _principal(self, token: str, client: str) -> Principal:
        if self._bootstrap is not None and hmac.compare_digest(token.encode(), self._bootstrap):
            return BOOTSTRAP
        parsed = parse_token(token)
        if parsed is None:
            self.failures.take(client)
            raise Unauthenticated("the API key is malformed (expected ar_<id>_<secret>)")
        key_id, secret = parsed
        entry = self._known.get(key_id) or self._unknown.get(key_id)
        if entry is None or entry.expires <= self._clock():
            # a client over its failures still renews a key it proved it holds (the secret
            # matches what was read before): only guesses are cut off
            proven = entry is not None and entry.principal is not None and _matches(secret, entry)
            wait = 0.0 if proven else self.failures.wait_s(client)
            if wait:
                raise RateLimited(
                    "too many failed authentications from this client", _retry_after(wait)
                )
            entry = self._remember(key_id, *await self._read(key_id))
        if entry.principal is None or not _matches(secret, entry):
            self.failures.take(client)
            raise Unauthenticated(_INVALID)
        return entry.principal

    async def _read(self, key_id: str) -> tuple[KeyRecord | None, float]:
        """One Redis read per id at a time, whatever the number of requests waiting for it;
        the record, and when its read began (what it is trusted from, for every waiter).

        The read is a task of its own: a caller that goes away does not cancel it for the rest.
        """
        task = self._reading.get(key_id)
        if task is None:
            task = asyncio.ensure_future(self._timed_lookup(key_id))
            self._reading[key_id] = task
            task.add_done_callback(lambda done: self._read_done(key_id, done))
        return await asyncio.shield(task)

    async def _timed_lookup(self, key_id: str) -> tuple[KeyRecord | None, float]:
        started = self._clock()
        return await self._lookup(key_id), started

    def _read_done(self, key_id: str, task: asyncio.Future[tuple[KeyRecord | None, float]]) -> None:
        del self._reading[key_id]
        if not task.cancelled():
            task.exception()  # retrieved here: no warning when every caller went away

    def _remember(self, key_id: str, record: KeyRecord | None, read_at: float) -> _Entry:
        valid = record is not None and not record.revoked and record.scope in _SCOPES
        principal = (
            Principal(key_id, record.principal, Scope(record.scope), record.agent_patterns)
            if valid and record is not None
            else None
        )
        # trusted from when the read began: a request that joined a read in flight gets no
        # longer than the cache time from it either
        entry = _Entry(read_at + self._cache_s, principal, record.secret_sha256 if record else "")
        if self._cache_s > 0:
            table = self._known if principal is not None else self._unknown
            self._known.pop(key_id, None)
            self._unknown.pop(key_id, None)
            table[key_id] = entry
            if len(table) > self._max:
                table.popitem(last=False)
        return entry


def _matches(secret: str, entry: _Entry) -> bool:
    """Whether `secret` is the one whose digest `entry` holds (constant-time compare)."""
    return hmac.compare_digest(secret_digest(secret), entry.digest)


def _retry_after(wait_s: float) -> int:
    """Whole seconds for Retry-After, at least 1."""
    return max(1, math.ceil(wait_s))
