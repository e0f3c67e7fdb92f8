"""The registry's own A2A v1.0 card: it offers one skill, discovering agents over HTTP.

The registry is not an A2A server (it speaks no A2A JSON-RPC, gRPC or HTTP+JSON binding), so
its one interface names a custom binding by URI, as the A2A specification allows, rather than
claiming a core binding it does not implement.
"""

from __future__ import annotations

from typing import Any

from agentroster import __version__

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
                "protocolVersion": "1.0",
            }
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
