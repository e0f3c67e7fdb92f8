"""`/mcp`: read access as discovery has it, then the SDK's Streamable HTTP session manager.

With `AGENTROSTER_READ_REQUIRES_KEY` every MCP request needs a key of any scope (401 in the
API's error shape otherwise, before any MCP work), and a session is bound to the key that
opened it: a request for it with another key is answered as for an unknown session (404).
Without the setting the endpoint is public like discovery and a presented key is not looked at.
A request with an `Origin` header (a browser's) is refused with 403 unless the origin is listed
in `AGENTROSTER_MCP_ALLOWED_ORIGINS`: the MCP specification asks servers to check it, against
DNS rebinding (a page whose host name resolves to the registry's address).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from agentroster.api.auth import require_read
from agentroster.api.errors import ApiError

if TYPE_CHECKING:  # deps imports this package for its state's type
    from agentroster.api.deps import ApiState

#: The path the registry serves MCP at.
MCP_PATH = "/mcp"


class OriginNotAllowed(ApiError):
    """403: a browser page of an origin not in `AGENTROSTER_MCP_ALLOWED_ORIGINS` called /mcp."""

    def __init__(self, origin: str) -> None:
        super().__init__(
            403,
            "origin-not-allowed",
            "this registry's MCP endpoint does not answer pages of this origin "
            "(AGENTROSTER_MCP_ALLOWED_ORIGINS)",
            {"origin": origin[:256]},
        )


class McpEndpoint:
    """ASGI app of `/mcp`, mounted as a route of the API (so its middleware applies)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check read access, then hand the request to the running MCP service."""
        request = Request(scope, receive)
        state: ApiState | None = getattr(request.app.state, "agentroster", None)
        if state is None or state.mcp is None:
            raise RuntimeError("the API's lifespan has not run: serve it with an ASGI server")
        origin = request.headers.get("origin")
        if origin is not None and origin not in state.settings.mcp_allowed_origins:
            raise OriginNotAllowed(origin)
        principal = await require_read(request)  # an ApiError answers in the API's shape
        if principal is not None:
            # the SDK binds a session to the credential that opened it (never the key itself)
            token = AccessToken(
                token=principal.key_id, client_id=principal.key_id, scopes=[principal.scope]
            )
            scope = {**scope, "user": AuthenticatedUser(token)}
        await state.mcp.manager.handle_request(scope, receive, send)
