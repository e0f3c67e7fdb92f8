"""The `agentroster` command: run the registry's worker, and more as the project grows."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from agentroster.settings import Settings

log = logging.getLogger("agentroster")

HostOption = Annotated[
    str | None, typer.Option(help="Address to listen on (default: AGENTROSTER_API_HOST).")
]
PortOption = Annotated[
    int | None, typer.Option(help="Port to listen on (default: AGENTROSTER_API_PORT).")
]

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
    from agentroster.worker import create_worker

    settings = _settings(None, None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with create_worker(settings):
            await stop.wait()

    asyncio.run(run())


@app.command()
def up(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the whole registry in one process: a worker and the HTTP API, on one event loop.

    The quickest way to a working registry; in production scale `agentroster worker` and
    `agentroster api` separately. SIGTERM or Ctrl-C stops both gracefully.
    """
    from agentroster.api import create_api
    from agentroster.worker import create_worker

    settings = _settings(host, port)

    async def run() -> None:
        async with create_worker(settings) as worker:
            api = create_api(settings, registries=[worker.metrics.registry])
            await _serve(api, settings)

    asyncio.run(run())


@app.command()
def api(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the HTTP read API alone (it only reads Redis), to scale replicas separately."""
    from agentroster.api import create_api

    settings = _settings(host, port)
    asyncio.run(_serve(create_api(settings), settings))


def _settings(host: str | None, port: int | None) -> Settings:
    from agentroster.settings import Settings

    overrides = {k: v for k, v in (("api_host", host), ("api_port", port)) if v is not None}
    settings = Settings().model_copy(update=overrides)
    _configure_logging(settings.log_level)
    return settings


async def _serve(api: FastAPI, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn installs the handlers and shuts down gracefully)."""
    import uvicorn

    config = uvicorn.Config(
        api, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False
    )
    # uvicorn shuts down on SIGTERM/SIGINT and then raises the signal again for the previous
    # handler; this one absorbs it, so the worker beside the API still stops gracefully
    previous = {sig: signal.signal(sig, _absorb_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        await uvicorn.Server(config).serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _absorb_signal(signum: int, frame: object) -> None:
    log.info("%s: shutting down", signal.Signals(signum).name)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """Entry point of the `agentroster` script."""
    app()
