"""The registry as an MCP server at `/mcp` (Streamable HTTP, the official `mcp` SDK).

server.py     McpService: the SDK's low-level server and session manager, run in the
              API's lifespan
tools.py      discover_agents, get_agent, get_agent_card (the routes' code paths)
resources.py  agents' cards as resources, agentroster://agents/{agent_id}/card
notifier.py   list_changed / updated notifications, fed by the one outbox follower
endpoint.py   /mcp itself: read access as discovery has it, then the session manager
"""

from agentroster.api.mcp_server.endpoint import MCP_PATH, McpEndpoint
from agentroster.api.mcp_server.server import McpService

__all__ = ["MCP_PATH", "McpEndpoint", "McpService"]
