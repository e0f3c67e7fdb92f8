"""A Beacon in a process of its own, for tests that kill an agent (kill -9: no deregistration).

    python -m tests.ui.beacon_process '<card JSON>' <agent_id>

Broker and prefix come from AGENTROSTER_BROKER_URL and AGENTROSTER_PREFIX; it heartbeats every
0.5 s with a 1.5 s lease, prints "registered" once its registration is published, and runs
until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from agentroster.client import Beacon


async def main(card: str, agent_id: str) -> None:
    """Register, say so, heartbeat until killed."""
    async with Beacon(
        json.loads(card), agent_id=agent_id, interval_s=0.5, ttl_s=1.5, handle_signals=False
    ):
        print("registered", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
