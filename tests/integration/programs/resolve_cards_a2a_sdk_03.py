"""Run by tests/integration/test_a2a_sdk_03.py in a throwaway venv holding a2a-sdk 0.3.26 (it
cannot live beside a2a-sdk 1.x): resolve cards from a running registry with that SDK's own
`A2ACardResolver` and print what it read as one JSON object on stdout.

    python resolve_cards_a2a_sdk_03.py <registry base url> <mixed agent> <v1.0-only agent>

Imports nothing of agentroster: only what a pre-1.0 A2A client has.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import version
from typing import Any

import httpx
from a2a.client import A2ACardResolver
from a2a.client.errors import A2AClientHTTPError
from a2a.types import AgentCard


def card_summary(card: AgentCard) -> dict[str, Any]:
    """What the test checks of a card the SDK validated."""
    return {
        "name": card.name,
        "url": card.url,
        "protocol_version": card.protocol_version,
        "preferred_transport": card.preferred_transport,
        "additional": [[i.url, i.transport] for i in card.additional_interfaces or []],
    }


async def main(base: str, mixed: str, only10: str) -> dict[str, Any]:
    read: dict[str, Any] = {"sdk": version("a2a-sdk")}
    async with httpx.AsyncClient(timeout=30) as http:
        registry = A2ACardResolver(http, base)
        # the path clients before 0.3 use, and the current one asked for 0.3
        read["registry_legacy_path"] = card_summary(
            await registry.get_agent_card(relative_card_path="/.well-known/agent.json")
        )
        read["registry_asked_0_3"] = card_summary(
            await registry.get_agent_card(http_kwargs={"headers": {"A2A-Version": "0.3"}})
        )
        agent = A2ACardResolver(http, f"{base}/v1/agents/{mixed}")
        read["mixed_legacy_path"] = card_summary(
            await agent.get_agent_card(relative_card_path="/.well-known/agent.json")
        )
        read["mixed_asked_0_3"] = card_summary(
            await agent.get_agent_card(http_kwargs={"headers": {"A2A-Version": "0.3"}})
        )
        try:
            await A2ACardResolver(http, f"{base}/v1/agents/{only10}").get_agent_card(
                relative_card_path="/.well-known/agent.json"
            )
            read["only10_status"] = 200
        except A2AClientHTTPError as error:
            read["only10_status"] = error.status_code
    return read


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
