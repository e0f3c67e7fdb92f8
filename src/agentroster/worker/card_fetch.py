"""Fetch an agent's well-known card through the SSRF guard, and say whether it matches.

    fetcher = CardFetcher(FetchPolicy(allowed=parse_networks(["10.0.0.0/8"])))
    result = await fetcher.check(base_url, name, registered_urls)   # a `Result`
    await fetcher.aclose()

What is fetched: from the base URL's origin and path, `<path>/.well-known/agent-card.json`
(A2A v1.0) then `<path>/.well-known/agent.json` (v0.3), then the same two at the origin when the
URL has a path (oo-a2a-registry also tries each parent path; we keep to these two places). The
first answer that is a JSON document decides (`registry.card_match`); a 404 or another error
status moves on to the next place.

How (`net_guard` has the rules): the host is resolved once, every address checked, and the
connection made to the checked address (the URL's host goes in the `Host` header and, for
https, in TLS SNI and the certificate check), so a second DNS answer cannot swap it (DNS
rebinding). The request goes straight to an httpx transport, not through a client: no cookies
kept or sent, no credentials, no proxy from the environment, a fixed User-Agent, no
`Accept-Encoding` (a compressed answer is refused: a small body must not inflate past the cap).
Redirects are followed by hand, at most `max_redirects`, only within the same scheme, host and
port (so to the address already checked). The whole check, resolution included, has one
deadline (`timeout_s`), and the body is read in chunks and abandoned past `max_bytes`.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import orjson

from agentroster.registry.card_match import card_matches
from agentroster.worker.net_guard import (
    IPAddress,
    Network,
    Refused,
    Target,
    check_addresses,
    check_url,
    literal_address,
)

log = logging.getLogger(__name__)

USER_AGENT = "agentroster-card-check/1"
WELL_KNOWN = ("/.well-known/agent-card.json", "/.well-known/agent.json")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class Result(enum.StrEnum):
    """What one check found (also the metric's label)."""

    VERIFIED = "verified"
    MISMATCH = "mismatch"
    REFUSED = "refused"  # by the guard: nothing was sent
    UNREACHABLE = "unreachable"  # no answer, no card at either path, or past the deadline
    TOO_LARGE = "too-large"

    @property
    def verified(self) -> bool:
        """What is recorded: only a match is `verified: true`."""
        return self is Result.VERIFIED


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """The guard's settings: allowed networks, deadline, body cap, redirects."""

    allowed: tuple[Network, ...] = ()
    timeout_s: float = 3.0
    max_bytes: int = 64 * 1024
    max_redirects: int = 3


class FetchFailed(Exception):
    """`CardFetcher.fetch` got no document; `result` says which way (the message says why)."""

    def __init__(self, result: Result, why: str) -> None:
        super().__init__(why)
        self.result = result


class _Stop(Exception):
    """Ends a check with a result."""

    def __init__(self, result: Result, why: str) -> None:
        super().__init__(why)
        self.result = result


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (the system resolver, in a thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class CardFetcher:
    """Checks agents' well-known cards under a `FetchPolicy` (see the module docstring)."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver = resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolver
        # no keep-alive: a pooled connection to one address must never serve another host name
        self._transport = transport or httpx.AsyncHTTPTransport(
            retries=0, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self._transport.aclose()

    async def check(self, base_url: str, name: str, registered_urls: frozenset[str]) -> Result:
        """Fetch the card at `base_url`'s well-known paths; whether it names `name` at one of
        `registered_urls`. Never raises for what the remote side does."""
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                return await self._check(base_url, name, registered_urls)
        except _Stop as stop:
            log.info("card check of %s: %s (%s)", base_url, stop.result, stop)
            return stop.result
        except TimeoutError:
            return Result.UNREACHABLE
        except Refused as refused:
            log.info("card check of %s refused: %s", base_url, refused)
            return Result.REFUSED
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            # the connection broke mid-body, or a redirect httpx cannot even parse
            log.info("card check of %s: unreachable (%s)", base_url, exc)
            return Result.UNREACHABLE

    async def fetch(self, url: str, *, public_needs_tls: bool = False) -> bytes:
        """GET one URL under the same guard, deadline and size cap as a card check, following
        no redirect (one is refused: a key set must come from where it was named); the body,
        or `FetchFailed`. `public_needs_tls`: plain http only to an address of the allowed
        networks, never a public one (RFC 7515 wants a key set fetched with TLS; inside the
        operator's own networks they may choose otherwise)."""
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                target = check_url(url)
                address = await self._address(target)
                if public_needs_tls and target.scheme == "http" and address.is_global:
                    raise Refused(f"plain http to the public address {address}: https only")
                response = await self._send(target, address)
                try:
                    if response.status_code in _REDIRECTS:
                        location = response.headers.get("location", "")
                        raise Refused(f"redirect to {location[:200]!r} refused")
                    if response.status_code != 200:
                        raise _Stop(Result.UNREACHABLE, f"HTTP status {response.status_code}")
                    return await self._read(response)
                finally:
                    await response.aclose()
        except _Stop as stop:
            raise FetchFailed(stop.result, str(stop)) from None
        except TimeoutError:
            why = f"no answer within {self.policy.timeout_s}s"
            raise FetchFailed(Result.UNREACHABLE, why) from None
        except Refused as refused:
            raise FetchFailed(Result.REFUSED, str(refused)) from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise FetchFailed(Result.UNREACHABLE, str(exc)) from None

    async def _check(self, base_url: str, name: str, registered_urls: frozenset[str]) -> Result:
        base = check_url(base_url)
        address = await self._address(base)
        fetched_any = False
        for path in candidate_paths(base.path):
            status, body = await self._fetch(base, path, address)
            if status != 200:
                continue
            fetched_any = True
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
            matched = card_matches(name, registered_urls, document)
            return Result.VERIFIED if matched else Result.MISMATCH
        why = "no JSON card at the well-known paths" if fetched_any else "no card found"
        raise _Stop(Result.UNREACHABLE, why)

    async def _address(self, target: Target) -> IPAddress:
        """The one checked address to connect to for the target's host."""
        literal = literal_address(target.host)
        if literal is not None:
            return check_addresses([literal], self.policy.allowed)
        try:
            addresses = await self._resolve(target.host, target.port)
        except OSError as exc:
            raise _Stop(Result.UNREACHABLE, f"cannot resolve {target.host}: {exc}") from None
        return check_addresses(addresses, self.policy.allowed)

    async def _fetch(self, origin: Target, path: str, address: IPAddress) -> tuple[int, bytes]:
        """GET one path at the checked address, following same-origin redirects by hand."""
        target = Target(origin.scheme, origin.host, origin.port, path)
        for _ in range(self.policy.max_redirects + 1):
            response = await self._send(target, address)
            try:
                if response.status_code not in _REDIRECTS:
                    if response.status_code != 200:
                        return response.status_code, b""
                    return 200, await self._read(response)
                location = response.headers.get("location")
            finally:
                await response.aclose()
            if not location:
                return response.status_code, b""
            current = f"{target.scheme}://{_authority(target)}{target.path}"
            try:
                following = check_url(urljoin(current, location))
            except Refused as refused:
                raise Refused(f"redirect to {location[:200]!r}: {refused}") from None
            if following.origin != origin.origin:
                raise Refused(f"redirect to another origin: {location[:200]!r}")
            target = following
        raise _Stop(Result.UNREACHABLE, f"more than {self.policy.max_redirects} redirects")

    async def _send(self, target: Target, address: IPAddress) -> httpx.Response:
        host = f"[{address}]" if address.version == 6 else str(address)
        url = httpx.URL(f"{target.scheme}://{host}:{target.port}{target.path}")
        extensions: dict[str, object] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
        request = httpx.Request(
            "GET",
            url,
            headers={
                "Host": _authority(target),
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            extensions=extensions,
        )
        try:
            return await self._transport.handle_async_request(request)
        except httpx.TransportError as exc:
            raise _Stop(Result.UNREACHABLE, f"{type(exc).__name__}: {exc}") from None

    async def _read(self, response: httpx.Response) -> bytes:
        """The body, at most `max_bytes` of it; `_Stop` past it or if compressed."""
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise _Stop(Result.UNREACHABLE, f"compressed answer ({encoding}) refused")
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Stop(Result.TOO_LARGE, f"Content-Length {declared} > {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _Stop(Result.TOO_LARGE, f"body beyond {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def candidate_paths(path: str) -> list[str]:
    """Where a card is looked for: under the URL's path, then at the origin (no query)."""
    base = path.split("?", 1)[0].rstrip("/")
    places = [base, ""] if base else [""]
    return [place + well_known for place in places for well_known in WELL_KNOWN]


def _authority(target: Target) -> str:
    """`host[:port]` as the Host header names it (the port only when not the default)."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"
