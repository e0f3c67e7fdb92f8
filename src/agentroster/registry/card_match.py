"""Does a card fetched from an agent's well-known URL match the card it registered? Pure.

The rule: the fetched document is a JSON object, it names the same agent (its `name` equals
the registered card's, exactly) and it declares at least one of the registered endpoint URLs.
Both sides are read through the same derivation discovery uses (`derive_endpoints`: A2A v1.0
`supportedInterfaces[].url`, v0.3 `url` and `additionalInterfaces`), so a v0.3 card served for
a v1.0 registration (or the other way round) matches when it names the same agent at the same
place. URLs are compared after normalising what does not change where they lead: scheme and
host case, a default port, a trailing `/`.

Why not the whole card: an agent may serve a newer or differently shaped card than the one it
registered (a version bump, a v0.3 SDK serving v0.3); what verification shows is that whoever
controls the endpoint publishes this agent there, which the name and one common URL say.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from agentroster.contracts import derive_endpoints

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str | None:
    """A URL in the form two URLs that lead to the same place share; None if unreadable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{host}{path}{query}"


def endpoint_urls(urls: Iterable[str | None]) -> frozenset[str]:
    """The normalised forms of the URLs given (none for an absent or unreadable one)."""
    return frozenset(n for url in urls if url and (n := normalise_url(url)) is not None)


def card_urls(card: dict[str, Any]) -> frozenset[str]:
    """The normalised endpoint URLs an A2A card declares (none for a card that cannot be read)."""
    try:
        return endpoint_urls(e.url for e in derive_endpoints(card))
    except (ValidationError, ValueError, TypeError):
        return frozenset()


def card_matches(name: str, registered_urls: frozenset[str], fetched: Any) -> bool:
    """Whether `fetched` (parsed JSON) names the agent `name` at one of `registered_urls`."""
    if not isinstance(fetched, dict) or not name or fetched.get("name") != name:
        return False
    return bool(card_urls(fetched) & registered_urls)
