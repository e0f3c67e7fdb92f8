"""The MCP server of one API process: tools, card resources, notifications, sessions.

`McpService` is built by the API's lifespan from the collaborators the routes use, and run
inside it (`async with service.run()`), so the SDK's session manager, the notifier's sender and
the sessions' tasks live exactly as long as the API's connections:

    service = McpService(settings, reader, read_model, follower)
    async with service.run():
        ...   # service.manager.handle_request(scope, receive, send) serves /mcp

Sessions are stateful (notifications need a standing stream) and bounded per process
(`AGENTROSTER_MCP_MAX_SESSIONS`: a new session over it gets 503, the open ones go on) and in
idle life (`AGENTROSTER_MCP_SESSION_IDLE_S`); a request body is bounded by
`AGENTROSTER_MAX_MESSAGE_BYTES`, as every request of the API is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from agentroster import __version__
from agentroster.api.follower import OutboxFollower
from agentroster.api.mcp_server.notifier import RosterNotifier
from agentroster.api.mcp_server.resources import CardResources
from agentroster.api.mcp_server.tools import TOOLS, RegistryTools
from agentroster.api.read_model import ReadModel
from agentroster.settings import Settings
from agentroster.store.reader import RegistryReader

INSTRUCTIONS = """\
This server is an agent registry: it knows which AI agents exist, what they can do (skills), \
whether they are running now, and how to reach them. Use `discover_agents` to find agents for \
a task (by skill, tag, protocol or free text), `get_agent` to check one agent's status, and \
`get_agent_card` to read how to talk to it. Each agent's card is also a resource, \
agentroster://agents/{agent_id}/card; subscribe to it to hear when that agent changes."""


class RegistryMcpServer(Server[dict[str, Any], Any]):
    """The SDK's low-level server, declaring resource subscriptions and list changes."""

    def get_capabilities(
        self,
        notification_options: NotificationOptions,
        experimental_capabilities: dict[str, dict[str, Any]],
    ) -> types.ServerCapabilities:
        """What the handlers registered offer, with `subscribe` and `listChanged` on."""
        capabilities = super().get_capabilities(
            NotificationOptions(resources_changed=True), experimental_capabilities
        )
        if capabilities.resources is not None:
            capabilities.resources.subscribe = True
        return capabilities


class McpService:
    """The MCP server, its session manager and its notifier, for one API process."""

    def __init__(
        self,
        settings: Settings,
        reader: RegistryReader,
        read_model: ReadModel | None,
        follower: OutboxFollower,
    ) -> None:
        self.server = RegistryMcpServer(
            "agentroster", version=__version__, instructions=INSTRUCTIONS
        )
        self.notifier = RosterNotifier(follower)
        self.tools = RegistryTools(reader, read_model)
        self.resources = CardResources(reader, read_model, self.notifier, self._session)
        handlers = self.server.request_handlers
        handlers[types.ListToolsRequest] = self._list_tools
        handlers[types.CallToolRequest] = self.tools.call
        handlers[types.ListResourcesRequest] = self.resources.list
        handlers[types.ListResourceTemplatesRequest] = self.resources.templates
        handlers[types.ReadResourceRequest] = self.resources.read
        handlers[types.SubscribeRequest] = self.resources.subscribe
        handlers[types.UnsubscribeRequest] = self.resources.unsubscribe
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            session_idle_timeout=settings.mcp_session_idle_s,
            max_sessions=settings.mcp_max_sessions,
            max_request_body_size=settings.max_message_bytes,
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Serve sessions and send notifications until the block ends (the API's lifespan).

        The session manager's task group runs in a task of its own: an anyio task group must
        be left by the task that entered it, and a lifespan may end in another task than the
        one it started in (test fixtures do).
        """
        started, stopping = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with self.manager.run():
                started.set()
                await stopping.wait()

        await self.notifier.start()
        sessions = asyncio.create_task(serve(), name="agentroster-mcp-sessions")
        try:
            # the task ends early only by failing to start: its exception is raised here
            waiter = asyncio.ensure_future(started.wait())
            try:
                await asyncio.wait([sessions, waiter], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
            if sessions.done():
                sessions.result()
            yield
        finally:
            stopping.set()
            await sessions
            await self.notifier.stop()

    def _session(self) -> ServerSession:
        return self.server.request_context.session

    async def _list_tools(self, _: types.ListToolsRequest) -> types.ServerResult:
        return types.ServerResult(types.ListToolsResult(tools=TOOLS))
