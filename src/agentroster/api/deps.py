"""What routes depend on, as `Annotated` aliases: `reader: ReaderDep`, `state: StateDep`.

Everything lives in one `ApiState`, built by the app's lifespan and kept on `app.state`; the
dependencies only hand its parts to the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from agentroster.api.gateway import CommandGateway
from agentroster.api.key_verifier import KeyVerifier
from agentroster.api.mcp_server import McpService
from agentroster.api.probes import BrokerProbe
from agentroster.api.read_model import ReadModel
from agentroster.api.streams import StreamHub
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.settings import Settings
from agentroster.store.api_keys import KeyStore
from agentroster.store.outbox import Outbox
from agentroster.store.reader import RegistryReader


@dataclass
class ApiState:
    """The connections and collaborators of one running API."""

    settings: Settings
    redis: Redis
    reader: RegistryReader
    outbox: Outbox
    broker: BrokerProbe
    #: The event streams, fed by the process's one outbox follower.
    streams: StreamHub
    #: The registry in memory, fed by the same follower (None: discovery reads Redis).
    read_model: ReadModel | None
    #: Exposed by /metrics: the API's own registry first, then any passed to `create_api`.
    registries: tuple[CollectorRegistry, ...]
    #: API keys in Redis, and this process's cached, rate-limited check of presented ones.
    keys: KeyStore
    key_verifier: KeyVerifier
    #: Publishes HTTP writes onto the broker (api/routes/writes.py).
    gateway: CommandGateway
    #: The MCP server at /mcp (api/mcp_server), running inside the lifespan.
    mcp: McpService | None = None


async def get_state(request: Request) -> ApiState:
    """The running API's state (set by the lifespan; absent means it was never run)."""
    state: ApiState | None = getattr(request.app.state, "agentroster", None)
    if state is None:
        raise RuntimeError("the API's lifespan has not run: serve it with an ASGI server")
    return state


async def get_reader(state: Annotated[ApiState, Depends(get_state)]) -> RegistryReader:
    """The reader of the registry's Redis state."""
    return state.reader


StateDep = Annotated[ApiState, Depends(get_state)]
ReaderDep = Annotated[RegistryReader, Depends(get_reader)]
AgentIdPath = Annotated[
    str,
    Path(
        description="The agent's id: a DNS label (1-63 of a-z, 0-9, '-').",
        pattern=AGENT_ID_PATTERN,
        examples=["weather"],
    ),
]
