"""A long-lived agent (a service): register, heartbeat in the background, deregister on exit.

    AGENTROSTER_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/ \\
        python examples/long_lived_agent.py --name "Weather Bot" --interval 10

`Beacon` registers the card on enter, renews the lease every `--interval` seconds (the lease
lasts three intervals), and on SIGTERM or SIGINT deregisters before `wait_for_signal()`
returns, so the program ends normally (exit status 0) and subscribers see `agent.left` with
reason `deregistered` at once instead of when the lease expires.

Every command carries the broker user of `AGENTROSTER_BROKER_URL` as its AMQP `user_id`
(RabbitMQ validates it; the registry binds the agent to it). The agent needs only what
`agentroster broker grant-agent USER --agents 'weather-*'` gives: no *configure*, *write* on
its own routing keys. A refused command or a registry that never started ends the program
with a message naming the cause (exit status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from agentroster.client import Beacon, CommandRefused, RegistryNotDeclared
from agentroster.contracts.topology import DEFAULT_BROKER_URL, DEFAULT_PREFIX


def weather_card(name: str) -> dict[str, Any]:
    """An A2A v1.0 agent card, as the plain JSON object the agent serves."""
    return {
        "name": name,
        "description": "Forecasts and current conditions for any city.",
        "version": "1.0.0",
        "supportedInterfaces": [
            {
                "url": "http://127.0.0.1:8080/a2a",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            }
        ],
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [
            {
                "id": "forecast",
                "name": "Forecast",
                "description": "The weather of the next seven days.",
                "tags": ["weather", "forecast"],
            },
            {
                "id": "current",
                "name": "Current conditions",
                "description": "The weather now.",
                "tags": ["weather"],
            },
        ],
    }


async def main(name: str, interval_s: float) -> None:
    broker_url = os.environ.get("AGENTROSTER_BROKER_URL", DEFAULT_BROKER_URL)
    prefix = os.environ.get("AGENTROSTER_PREFIX", DEFAULT_PREFIX)
    async with Beacon(
        weather_card(name), broker_url, interval_s=interval_s, prefix=prefix
    ) as beacon:
        print(f"registered {beacon.agent_id}/{beacon.instance_id}", flush=True)
        # A real agent serves its A2A endpoint here (e.g. an ASGI server in a task).
        await beacon.wait_for_signal()
    print(f"deregistered {beacon.agent_id}/{beacon.instance_id}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="A long-lived agent that registers with agentroster."
    )
    parser.add_argument("--name", default="Weather Bot", help="the card's name")
    parser.add_argument("--interval", type=float, default=10.0, help="heartbeat interval (s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(main(args.name, args.interval))
    except (CommandRefused, RegistryNotDeclared) as exc:
        sys.exit(f"error: {exc}")
