"""Builders of test agents."""

from __future__ import annotations

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
