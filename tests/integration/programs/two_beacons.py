"""Two Beacons in one process that wait for nothing: SIGTERM must deregister both, then end
the process as SIGTERM's default does (tests/integration/test_signals.py)."""

from __future__ import annotations

import asyncio
import sys

from agentroster import Beacon


async def main(first: str, second: str) -> None:
    card = {"name": first, "description": "first", "url": "http://127.0.0.1:1/a2a"}
    other = {"name": second, "description": "second", "url": "http://127.0.0.1:1/a2a"}
    async with Beacon(card, interval_s=60), Beacon(other, interval_s=60):
        print("registered", flush=True)
        await asyncio.Event().wait()  # until SIGTERM ends the process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
