"""Agents' cards as MCP resources: `agentroster://agents/{agent_id}/card`.

`resources/list` pages through the live agents (the same discovery page as `GET /v1/agents`,
status `live`); `resources/templates/list` names the URI template, so a client reads the card
of any agent it knows the id of, offline ones included; `resources/read` gives the card exactly
as registered (`GET /v1/agents/{agent_id}/card`). A session that lists or subscribes is told
when the roster changes (`notifier.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson
from mcp import types
from mcp.server.session import ServerSession
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from agentroster.api.discovery import discovery_page
from agentroster.api.mcp_server.notifier import CARD_URI as CARD_URI_TEMPLATE
from agentroster.api.mcp_server.notifier import RosterNotifier, TooManySubscriptions
from agentroster.api.read_model import ReadModel
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.registry.terms import Filters
from agentroster.store.reader import RegistryReader

#: Resources per `resources/list` page.
LIST_PAGE = 100
#: JSON-RPC error code of an unknown resource (the MCP specification's).
RESOURCE_NOT_FOUND = -32002
_CARD_URI = re.compile(r"^agentroster://agents/(?P<agent_id>[^/]{1,63})/card$")
_AGENT_ID = re.compile(AGENT_ID_PATTERN)


def card_uri(agent_id: str) -> str:
    """The resource URI of an agent's card."""
    return CARD_URI_TEMPLATE.format(agent_id=agent_id)


def agent_of(uri: AnyUrl | str) -> str:
    """The agent id a card URI names; `McpError` (invalid params) for any other URI."""
    match = _CARD_URI.match(str(uri))
    if match is None or not _AGENT_ID.match(match["agent_id"]):
        raise McpError(
            types.ErrorData(
                code=types.INVALID_PARAMS,
                message=f"not an agent card URI: expected {CARD_URI_TEMPLATE} with an agent id "
                "(1-63 of a-z, 0-9, '-')",
            )
        )
    return match["agent_id"]


class CardResources:
    """Answers the resource requests from the read model and the Redis reader."""

    def __init__(
        self,
        reader: RegistryReader,
        read_model: ReadModel | None,
        notifier: RosterNotifier,
        session: Callable[[], ServerSession],
    ) -> None:
        self.reader = reader
        self.read_model = read_model
        self.notifier = notifier
        #: The session of the request being handled.
        self.session = session

    async def list(self, request: types.ListResourcesRequest) -> types.ServerResult:
        """One page of the live agents' cards; `nextCursor` while there are more."""
        self.notifier.watch(self.session())
        cursor = request.params.cursor if request.params else None
        if cursor is not None and not _AGENT_ID.match(cursor):
            raise McpError(
                types.ErrorData(
                    code=types.INVALID_PARAMS,
                    message="invalid cursor: pass back the nextCursor of the previous page",
                )
            )
        body = await discovery_page(
            self.read_model, self.reader, "live", LIST_PAGE, cursor, Filters()
        )
        page = orjson.loads(body)
        resources = [
            types.Resource(
                uri=AnyUrl(card_uri(agent["agent_id"])),
                name=agent["agent_id"],
                title=agent["agent"].get("name") or None,
                description=agent["agent"].get("description") or None,
                mimeType="application/json",
            )
            for agent in page["agents"]
        ]
        return types.ServerResult(
            types.ListResourcesResult(resources=resources, nextCursor=page["next_cursor"])
        )

    async def templates(self, _: types.ListResourceTemplatesRequest) -> types.ServerResult:
        """The card URI template."""
        self.notifier.watch(self.session())
        template = types.ResourceTemplate(
            uriTemplate=CARD_URI_TEMPLATE,
            name="agent-card",
            title="An agent's card",
            description="The card an agent registered (A2A, MCP, ACP or custom), exactly as "
            "registered, by agent id.",
            mimeType="application/json",
        )
        return types.ServerResult(types.ListResourceTemplatesResult(resourceTemplates=[template]))

    async def read(self, request: types.ReadResourceRequest) -> types.ServerResult:
        """The card exactly as registered."""
        agent_id = agent_of(request.params.uri)
        stored = await self.reader.get_card(agent_id)
        if stored is None:
            raise McpError(
                types.ErrorData(
                    code=RESOURCE_NOT_FOUND,
                    message=f"no agent {agent_id!r} in this registry",
                    data={"uri": str(request.params.uri)},
                )
            )
        contents = types.TextResourceContents(
            uri=request.params.uri,
            mimeType="application/json",
            text=stored.card.decode(errors="replace"),
        )
        return types.ServerResult(types.ReadResourceResult(contents=[contents]))

    async def subscribe(self, request: types.SubscribeRequest) -> types.ServerResult:
        """Send `notifications/resources/updated` whenever that agent changes."""
        agent_id = agent_of(request.params.uri)
        try:
            self.notifier.subscribe(self.session(), agent_id)
        except TooManySubscriptions as exc:
            raise McpError(types.ErrorData(code=types.INVALID_REQUEST, message=str(exc))) from None
        return types.ServerResult(types.EmptyResult())

    async def unsubscribe(self, request: types.UnsubscribeRequest) -> types.ServerResult:
        """Stop the notifications of that agent's card."""
        self.notifier.unsubscribe(self.session(), agent_of(request.params.uri))
        return types.ServerResult(types.EmptyResult())
