"""The `agentroster` command: run the registry's worker, and more as the project grows."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

app = typer.Typer(
    help="agentroster: an event-driven registry for AI agents (RabbitMQ in, Redis, events out).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Run the registry (worker, API) and inspect it; every setting is an AGENTROSTER_* variable."""


@app.command()
def worker() -> None:
    """Run one worker replica: apply commands to Redis, expire leases, publish events.

    Configured by AGENTROSTER_* environment variables (see the README). Run as many replicas
    as you like on the same broker and Redis; SIGTERM or Ctrl-C stops it gracefully.
    """
    from agentroster.settings import Settings
    from agentroster.worker import create_worker

    settings = Settings()
    _configure_logging(settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with create_worker(settings):
            await stop.wait()

    asyncio.run(run())


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """Entry point of the `agentroster` script."""
    app()
