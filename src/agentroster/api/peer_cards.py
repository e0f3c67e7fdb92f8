"""How the peers' clients' registrations map onto agents and instances (no I/O).

oo-a2a-registry keys an agent by its card's URL (v0.3 `url`, else the first v1.0
`supportedInterfaces[].url`); agentroster keys it by a DNS-label `agent_id`. A heartbeat's agent
is `<name slug>-<8 hex of the URL's SHA-256>`, so two agents with one name and different URLs
stay two agents (as there), and one agent keeps its id for as long as its name and URL do. Its
one instance is `url-<16 hex>` of the same hash: a restart at the same URL renews the same
instance.

a2a-registry keys an agent by its card's `name`; agentroster's id is the name's slug
(`derive_agent_id`), and a JSON-RPC registration is the agent's one instance `jsonrpc`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from agentroster.contracts.ids import derive_agent_id

#: oo-a2a-registry evicts an agent after this many missed intervals (its `STALE_MULTIPLIER`).
STALE_MULTIPLIER = 3
#: Hex digits of the URL's hash in a heartbeat agent's id (32 bits among agents of one name).
URL_HASH_CHARS = 8
#: The one instance a JSON-RPC (a2a-registry) registration holds.
JSONRPC_INSTANCE = "jsonrpc"


def without_nulls(value: Any) -> Any:
    """The JSON value with every `null` member of an object dropped, at any depth.

    oo-a2a-registry's client serialises its pydantic card with `None` for every absent field
    (`"url": null` in a v1.0 card, `"supportedInterfaces": null` in a v0.3 one); its own model
    reads `null` and absent alike, and so must agentroster, which tells a card's version by which
    fields it has. Iterative: a deeply nested card cannot overflow the stack.
    """
    root: list[Any] = [value]
    stack: list[tuple[list[Any] | dict[str, Any], Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, dict):
            cleaned = {k: v for k, v in item.items() if v is not None}
            parent[key] = cleaned
            stack.extend((cleaned, k) for k in cleaned)
        elif isinstance(item, list):
            copied = list(item)
            parent[key] = copied
            stack.extend((copied, n) for n in range(len(copied)))
    return root[0]


def effective_url(card: dict[str, Any]) -> str | None:
    """The URL oo-a2a-registry knows an agent by: `url`, else the first interface's `url`."""
    url = card.get("url")
    if isinstance(url, str) and url:
        return url
    interfaces = card.get("supportedInterfaces")
    if isinstance(interfaces, list) and interfaces and isinstance(interfaces[0], dict):
        first = interfaces[0].get("url")
        if isinstance(first, str) and first:
            return first
    return None


def _url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def heartbeat_agent_id(name: str, url: str) -> str:
    """The agent a heartbeat speaks for: the name's slug and a short hash of the URL.

    Raises `ValueError` when the name has nothing to make a slug of.
    """
    slug = derive_agent_id(name)[: 63 - URL_HASH_CHARS - 1].rstrip("-")
    return f"{slug}-{_url_hash(url)[:URL_HASH_CHARS]}"


def heartbeat_instance_id(url: str) -> str:
    """The one instance of the agent at `url`, the same across the agent's restarts."""
    return f"url-{_url_hash(url)[:16]}"


def bounded_interval(interval: int, ttl_min_s: float, ttl_max_s: float) -> int:
    """The heartbeat interval the registry wants: the agent's own, moved into the range where
    `STALE_MULTIPLIER` intervals make a TTL the registry accepts (whole seconds, at least 1)."""
    low = max(1, math.ceil(ttl_min_s / STALE_MULTIPLIER))
    high = max(low, math.floor(ttl_max_s / STALE_MULTIPLIER))
    return min(max(interval, low), high)
