"""The registry's own A2A card: it offers one skill, discovering agents over HTTP.

The registry is not an A2A server (it speaks no A2A JSON-RPC, gRPC or HTTP+JSON binding), so
its interface names a custom binding by URI, as the A2A specification allows, rather than
claiming a core binding it does not implement. Its REST API is the same whichever A2A version a
client reads the card in, so the v1.0 card lists that interface twice, for 1.0 and for 0.3 (the
specification lets one url serve several versions), and its v0.3 view (the legacy well-known
path) is the card's ordinary conversion.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from agentroster import __version__
from agentroster.api.a2a_conversion import A2AVersion, convert_card
from agentroster.contracts.cards import card_bytes

#: The binding of the registry's discovery interface: agentroster's REST read API.
DISCOVERY_BINDING_URI = "urn:agentroster:binding:discovery-http"


def registry_card(base_url: str) -> dict[str, Any]:
    """The card, with every url under `base_url` (the API's own address, ending in `/`)."""
    return {
        "name": "agentroster",
        "description": "Registry of AI agents: lists the agents that are live, idle or "
        "offline, with their cards, endpoints, skills and leases.",
        "version": __version__,
        "supportedInterfaces": [
            {
                "url": f"{base_url}v1/agents",
                "protocolBinding": DISCOVERY_BINDING_URI,
                "protocolVersion": version,
            }
            for version in ("1.0", "0.3")
        ],
        "documentationUrl": f"{base_url}docs",
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "skills": [
            {
                "id": "discover-agents",
                "name": "Discover agents",
                "description": "List the registered agents (GET /v1/agents: status, limit, "
                "cursor), read one agent with its live instances (GET /v1/agents/{agent_id}) "
                "and its card exactly as registered (GET /v1/agents/{agent_id}/card).",
                "tags": ["discovery", "registry", "a2a", "agents"],
                "examples": [
                    "GET /v1/agents?status=live&limit=100",
                    "GET /v1/agents/weather/card",
                ],
                "inputModes": ["application/json"],
                "outputModes": ["application/json"],
            }
        ],
    }


@functools.lru_cache(maxsize=8)
def registry_card_bytes(base_url: str, version: A2AVersion) -> tuple[bytes, str]:
    """The card in A2A `version` as served, and the SHA-256 of those bytes (its ETag).

    Built once per base url and version: the card changes only with the registry's release.
    """
    body = card_bytes(convert_card(registry_card(base_url), version))
    return body, hashlib.sha256(body).hexdigest()
