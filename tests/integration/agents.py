"""Builders of test agents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def a2a_card(
    name: str, *, skills: tuple[str, ...] = ("echo",), version: str = "1.0.0"
) -> dict[str, Any]:
    """A small A2A v1.0 card."""
    return {
        "name": name,
        "description": f"{name} for tests",
        "version": version,
        "supportedInterfaces": [
            {
                "url": f"http://127.0.0.1:9/{name}",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            }
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": s, "name": s, "description": s, "tags": [s]} for s in skills],
    }


def command_body(
    agent_id: str, kind: str = "register", instance_id: str = "i-1", seq: int = 1, **more: Any
) -> dict[str, Any]:
    """A command body written by hand, as a raw client (or a hostile one) sends it: a register
    carries `a2a_card(agent_id)`, a heartbeat some digest; `more` adds or replaces fields."""
    body: dict[str, Any] = {
        "agent_id": agent_id,
        "instance_id": instance_id,
        "seq": seq,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    if kind == "register":
        body |= {"ttl_s": 60, "card": a2a_card(agent_id)}
    elif kind == "heartbeat":
        body |= {"ttl_s": 60, "card_digest": "sha256:x"}
    return body | more
