"""An agent with tracing on: its application sets the tracer provider from the OTEL_* variables
(`agentroster.telemetry.configure_tracing`), then a Beacon registers and waits for SIGTERM
(tests/integration/test_tracing.py)."""

from __future__ import annotations

import asyncio
import sys

from agentroster import Beacon
from agentroster.telemetry import configure_tracing


async def main(name: str) -> None:
    card = {"name": name, "description": "traced", "url": "http://127.0.0.1:1/a2a"}
    async with Beacon(card, interval_s=60):
        print("registered", flush=True)
        await asyncio.Event().wait()  # until SIGTERM ends the process


if __name__ == "__main__":
    if not configure_tracing():
        sys.exit("the OTEL_* variables did not turn tracing on")
    asyncio.run(main(sys.argv[1]))
