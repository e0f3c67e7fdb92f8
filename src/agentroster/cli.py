"""The `agentroster` command: run the registry's worker and API, inspect and administer it.

The server commands (`worker`, `api`, `up`, `asyncapi`, `ownership`, `keys`) need the `server`
extra; on a base install (what an agent needs) they exit 2 with one line naming
`pip install 'agentroster[server]'` instead of a traceback. `agents`, `broker` need only the
base install.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agentroster.broker_admin import broker_app
from agentroster.contracts.topology import DEFAULT_PREFIX
from agentroster.keys_cli import keys_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    from agentroster.client.roster import Change
    from agentroster.settings import Settings
    from agentroster.store.ownership import Owner, Ownership

log = logging.getLogger("agentroster")

HostOption = Annotated[
    str | None, typer.Option(help="Address to listen on (default: AGENTROSTER_API_HOST).")
]
PortOption = Annotated[
    int | None, typer.Option(help="Port to listen on (default: AGENTROSTER_API_PORT).")
]

#: The discovery filters `agents` and `watch` share (those of `GET /v1/agents`).
DEFAULT_API_URL = "http://127.0.0.1:8000"
ApiUrlOption = Annotated[
    str, typer.Option(envvar="AGENTROSTER_API_URL", help="The registry's read API.")
]
SkillOption = Annotated[
    list[str] | None, typer.Option(help="Has this skill (repeat: has all of them).")
]
TagOption = Annotated[str | None, typer.Option(help="Has a skill with this tag.")]
ProtocolOption = Annotated[str | None, typer.Option(help="Speaks this protocol (a2a, mcp, ...).")]
TransportOption = Annotated[
    str | None, typer.Option(help="Reachable over this transport (http, amqp, ...).")
]
TextOption = Annotated[str | None, typer.Option(help="Text in the name, description or skills.")]
LabelOption = Annotated[
    list[str] | None, typer.Option(help="key:value label (repeat: all must match).")
]
VerifiedOption = Annotated[
    bool | None,
    typer.Option(
        "--verified/--unverified",
        help="Only agents whose well-known card the registry checked and found matching "
        "(--verified) or found not matching (--unverified).",
        show_default=False,
    ),
]

app = typer.Typer(
    help="agentroster: an event-driven registry for AI agents (RabbitMQ in, Redis, events out).",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # a docstring's wrapped paragraph renders as one paragraph
    add_completion=False,
)


app.add_typer(broker_app, name="broker")
app.add_typer(keys_app, name="keys")

#: Import names of the `server` extra's packages (pyproject.toml) that the server commands use.
SERVER_MODULES = (
    "faststream",
    "redis",
    "pydantic_settings",
    "prometheus_client",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "yaml",
    "pythonjsonlogger",
)
SERVER_INSTALL = "pip install 'agentroster[server]'"


def require_server(command: str) -> None:
    """Exit 2 with one line naming the install command when the `server` extra is missing."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        typer.echo(
            f"error: `agentroster {command}` runs the registry, which needs the server "
            f"dependencies (missing: {', '.join(missing)}): {SERVER_INSTALL}",
            err=True,
        )
        raise typer.Exit(2)


@app.callback()
def _root() -> None:
    """Run the registry (worker, API) and inspect it; every setting is an AGENTROSTER_* variable."""


@app.command()
def worker() -> None:
    """Run one worker replica: apply commands to Redis, expire leases, publish events.

    Configured by AGENTROSTER_* environment variables (see the README). Run as many replicas
    as you like on the same broker and Redis; SIGTERM or Ctrl-C stops it gracefully.
    """
    require_server("worker")
    from agentroster.metrics_export import exporting_metrics
    from agentroster.worker import create_worker
    from agentroster.worker.health import HealthPortUnavailable, serve_health

    settings = _settings(None, None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with (
            create_worker(settings) as worker,
            serve_health(worker, settings.worker_host, settings.worker_port),
            exporting_metrics([worker.metrics.registry]),  # if OTEL_* variables ask
        ):
            await stop.wait()

    try:
        asyncio.run(run())
    except HealthPortUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def up(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the whole registry in one process: a worker and the HTTP API, on one event loop.

    The quickest way to a working registry; in production scale `agentroster worker` and
    `agentroster api` separately. SIGTERM or Ctrl-C stops both gracefully.
    """
    require_server("up")
    from agentroster.api import create_api
    from agentroster.worker import create_worker
    from agentroster.worker.health import HealthPortUnavailable, serve_health

    settings = _settings(host, port)

    async def run() -> None:
        async with (
            create_worker(settings) as worker,
            serve_health(worker, settings.worker_host, settings.worker_port),
        ):
            api = create_api(settings, registries=[worker.metrics.registry])
            tune_gc()
            await _serve(api, settings)

    try:
        run_server(run())
    except HealthPortUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def api(
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the HTTP read API alone (it only reads Redis), to scale replicas separately."""
    require_server("api")
    from agentroster.api import create_api

    settings = _settings(host, port)
    api = create_api(settings)
    tune_gc()
    run_server(_serve(api, settings))


@app.command()
def agents(
    url: ApiUrlOption = DEFAULT_API_URL,
    skill: SkillOption = None,
    tag: TagOption = None,
    protocol: ProtocolOption = None,
    transport: TransportOption = None,
    q: TextOption = None,
    label: LabelOption = None,
    verified: VerifiedOption = None,
    status: Annotated[str, typer.Option(help="live, idle, offline or all.")] = "live",
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per agent and line, for scripts.")
    ] = False,
) -> None:
    """List the registry's agents, filtered: a table, or JSON lines with --json.

    Only the filters given are sent. Exits with 1 on an API error or an unreachable API.
    """
    import httpx

    from agentroster.client.discovery import DiscoveryClient, DiscoveryError
    from agentroster.client.models import Agent

    labels: dict[str, str] = {}
    for pair in label or ():
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key:value", param_hint="--label")
        labels[key] = value

    async def fetch() -> list[Agent]:
        found: list[Agent] = []
        async with DiscoveryClient(url) as registry:
            async for agent in registry.find(
                skill=skill or None,
                tag=tag,
                protocol=protocol,
                transport=transport,
                q=q,
                labels=labels or None,
                verified=verified,
                status=status,
            ):
                if json_output:  # streamed: a script sees each page as it arrives
                    typer.echo(agent.model_dump_json())
                else:
                    found.append(agent)
        return found

    try:
        found = asyncio.run(fetch())
    except DiscoveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        for detail in exc.details if isinstance(exc.details, list) else ():
            if isinstance(detail, dict) and "parameter" in detail:
                typer.echo(f"  {detail['parameter']}: {detail.get('message', '')}", err=True)
        raise typer.Exit(1) from None
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        reason = str(exc) or type(exc).__name__
        typer.echo(f"error: cannot reach the registry API at {url}: {reason}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        return
    rows = [("AGENT_ID", "STATUS", "LIVE", "NAME", "ENDPOINTS")] + [
        (
            agent.agent_id,
            agent.status,
            str(agent.live_instances),
            agent.name,
            ", ".join(f"{e.protocol}/{e.transport} {e.address}" for e in agent.endpoints),
        )
        for agent in found
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


@app.command()
def watch(
    url: ApiUrlOption = DEFAULT_API_URL,
    skill: SkillOption = None,
    tag: TagOption = None,
    protocol: ProtocolOption = None,
    transport: TransportOption = None,
    q: TextOption = None,
    label: LabelOption = None,
    verified: VerifiedOption = None,
    status: Annotated[
        str, typer.Option(help="live, idle, offline or all (agents leaving it are `left`).")
    ] = "all",
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per change and line, for scripts.")
    ] = False,
) -> None:
    """Print the registry's changes as they happen: a line per change, or JSON lines.

    Lists the matching agents first (a summary goes to stderr), then follows the events; after
    a disconnect it goes on where it stopped. Ctrl-C or SIGTERM stops it. Exits with 1 when
    the API refuses the filters or cannot be reached.
    """
    import httpx

    from agentroster.client._state import STATUSES
    from agentroster.client.discovery import DiscoveryError
    from agentroster.client.roster import Roster

    if status not in STATUSES:
        raise typer.BadParameter(f"one of {', '.join(STATUSES)}", param_hint="--status")
    labels: dict[str, str] = {}
    for pair in label or ():
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key:value", param_hint="--label")
        labels[key] = value

    def show(change: Change) -> None:
        after = change.after
        if json_output:
            import orjson

            line = {
                "kind": change.kind,
                "agent_id": change.agent_id,
                "revision": change.revision,
                "reason": change.reason,
                "relisted": change.relisted,
                "status": after.status if after else None,
                "before_status": change.before.status if change.before else None,
                "agent": after.model_dump(mode="json") if after else None,
            }
            typer.echo(orjson.dumps(line).decode())
            return
        typer.echo(watch_line(change))

    async def follow() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        roster = Roster(
            url,
            skill=skill or None,
            tag=tag,
            protocol=protocol,
            transport=transport,
            q=q,
            labels=labels or None,
            verified=verified,
            status=status,
        )
        changes = roster.changes()
        async with roster:
            typer.echo(f"synced: {len(roster)} agents at revision {roster.revision}", err=True)

            async def printing() -> None:
                async for change in changes:
                    show(change)

            printer = asyncio.create_task(printing())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({printer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (printer, stopping):
                task.cancel()
            if printer.done() and not printer.cancelled():
                printer.result()  # ChangesLost: this terminal fell too far behind

    try:
        asyncio.run(follow())
    except DiscoveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (TimeoutError, httpx.InvalidURL) as exc:
        reason = str(exc) or "no answer in time"
        typer.echo(f"error: cannot follow the registry API at {url}: {reason}", err=True)
        raise typer.Exit(1) from None


def watch_line(change: Change) -> str:
    """One change as `agentroster watch` prints it for people; control characters escaped."""
    after = change.after
    state = f"{after.status} live={after.live_instances}" if after else "(gone)"
    relisted = " [relisted]" if change.relisted else ""
    text = (
        f"{change.kind:<8} {change.agent_id}  {state}  rev {change.revision}"
        f"  ({change.reason}){relisted}"
    )
    # what the API sends reaches a terminal: no escape sequence of it is ever executed
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@app.command()
def asyncapi(
    out: Annotated[
        Path, typer.Option(help="Directory to write registry.yaml and agent.yaml into.")
    ] = Path("asyncapi"),
    prefix: Annotated[
        str, typer.Option(help="The registry prefix every exchange and queue name carries.")
    ] = DEFAULT_PREFIX,
) -> None:
    """Write the AsyncAPI 3.0 documents of the wire contract: registry.yaml and agent.yaml.

    Generated from the FastStream declarations with default settings: AGENTROSTER_* variables
    are ignored, so every machine writes the same files (CI regenerates and compares them).
    """
    require_server("asyncapi")
    from agentroster.specification import default_settings, write_documents

    try:
        settings = default_settings(prefix)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--prefix") from None
    for path in write_documents(out, settings):
        typer.echo(f"wrote {path}")


ownership = typer.Typer(
    help="Who owns an agent: show it, release it, or transfer it (acts on the registry's Redis).",
    no_args_is_help=True,
)
app.add_typer(ownership, name="ownership")

AgentIdArgument = Annotated[str, typer.Argument(help="The agent's id.")]


@ownership.command("show")
def ownership_show(agent_id: AgentIdArgument) -> None:
    """Print the identity that owns an agent (its first registration's broker user)."""
    owner = _ownership_call(lambda o: o.show(agent_id))
    typer.echo(f"{agent_id}: owned by {owner.describe()}")


@ownership.command("release")
def ownership_release(agent_id: AgentIdArgument) -> None:
    """Unbind an agent from its owner; its next registration binds it to that one's identity.

    For an owner that is gone for good (its broker user was deleted). A live owner's Beacon
    re-registers within one TTL and so binds the agent again: to hand an agent over, transfer
    it.
    """
    before = _ownership_call(lambda o: o.release(agent_id))
    typer.echo(f"{agent_id}: released (was owned by {before.describe()})")


@ownership.command("transfer")
def ownership_transfer(
    agent_id: AgentIdArgument,
    to: Annotated[
        str | None, typer.Option("--to", help="The broker user name that owns it from now.")
    ] = None,
    no_identity: Annotated[
        bool,
        typer.Option(
            "--to-no-identity", help="Bind it to commands without user_id (not recommended)."
        ),
    ] = False,
) -> None:
    """Bind an agent to another identity at once; the previous owner's commands are refused."""
    if (to is None) == (not no_identity):
        raise typer.BadParameter("give exactly one of --to USER and --to-no-identity")
    new_owner = to or ""
    before = _ownership_call(lambda o: o.transfer(agent_id, new_owner))
    after = f"identity {new_owner!r}" if new_owner else "no identity"
    typer.echo(f"{agent_id}: transferred from {before.describe()} to {after}")


def _ownership_call(action: Callable[[Ownership], Awaitable[Owner]]) -> Owner:
    """Run one ownership change against the configured Redis; exit 1 for an unknown agent."""
    require_server("ownership")
    from redis.asyncio import Redis

    from agentroster.store.ownership import Ownership, UnknownAgent

    settings = _settings(None, None)

    async def run() -> Owner:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await action(Ownership(redis, settings.prefix))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except UnknownAgent as exc:
        typer.echo(f"error: the registry has no agent {exc.args[0]!r}", err=True)
        raise typer.Exit(1) from None


def _settings(host: str | None, port: int | None) -> Settings:
    from pydantic import ValidationError

    from agentroster.settings import Settings

    overrides: dict[str, Any] = {
        k: v for k, v in (("api_host", host), ("api_port", port)) if v is not None
    }
    try:
        settings = Settings(**overrides)  # validated like the environment's values
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"]:
                name = "AGENTROSTER_" + "_".join(map(str, error["loc"])).upper()
                shown = (
                    _without_password(error["input"]) if name.endswith("_URL") else error["input"]
                )
                message = error["msg"].removeprefix("Value error, ")
                typer.echo(f"invalid {name}={shown!r}: {message}", err=True)
            else:  # a rule across settings: its message names them
                typer.echo(
                    f"invalid settings: {error['msg'].removeprefix('Value error, ')}", err=True
                )
        raise typer.Exit(2) from None
    from agentroster.logs import configure_logging
    from agentroster.telemetry import configure_tracing

    configure_logging(settings.log_level, settings.log_format)
    configure_tracing()  # only if OTEL_* variables ask for it
    return settings


def _without_password(url: object) -> object:
    """A URL to print: its password replaced by `***`."""
    if not isinstance(url, str):
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


#: Allocations between young-generation collections in a serving process (CPython's default is
#: 700). A page of 100 agents allocates thousands of containers that all live until the
#: response is sent; at 700, several collections ran per request and promoted the page to the
#: older generations. bench/README.md, Discovery, has the measurements.
GC_THRESHOLD = (10_000, 10, 10)


def tune_gc() -> None:
    """Garbage collector settings for a long-running server, once the app is built.

    Everything alive now (modules, the app, its routes and models) lives as long as the
    process: `gc.freeze()` keeps the collector from traversing it again on every full
    collection. A process-wide setting, so it belongs here and not in `create_api`.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def run_server(main: Coroutine[Any, Any, None]) -> None:
    """Run a serving process's event loop: uvloop's when it is installed, asyncio's otherwise.

    uvicorn picks uvloop by itself only when it creates the loop; here the loop is ours.
    """
    try:
        import uvloop
    except ImportError:  # not on Windows or PyPy (see the `server` extra)
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


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


def main() -> None:
    """Entry point of the `agentroster` script."""
    app()
