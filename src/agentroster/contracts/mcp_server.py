"""MCP servers as cards: the official MCP Registry's `server.json`.

The format: https://github.com/modelcontextprotocol/registry/blob/main/docs/reference/server-json/generic-server-json.md
and its schema https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json
(the same rules for the fields read here since 2025-09-29). The registry stores the card as it
arrived; these models check only the fields it reads (name, description, version, title,
`remotes`, `packages[].transport`, the tools in `_meta`), with the schema's bounds, so a bad one
is refused with its path (`remotes.0.url: ...`) instead of being indexed as something else.

`server.json` has no list of tools. A publisher may list them where the MCP Registry keeps
publisher metadata, `_meta["io.modelcontextprotocol.registry/publisher-provided"].tools`, as
MCP `Tool` objects (`name`, optional `title` and `description`); each becomes a skill.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentroster.contracts.endpoints import PRINTABLE, URL_PATTERN, Endpoint, check_url

#: Where the official schemas live; a card whose `$schema` starts so and ends with
#: `/server.schema.json` is a `server.json`.
MCP_SCHEMA_PREFIX = "https://static.modelcontextprotocol.io/schemas/"
MCP_SCHEMA_SUFFIX = "/server.schema.json"
#: The `_meta` key the MCP Registry keeps publisher-provided metadata under.
PUBLISHER_META = "io.modelcontextprotocol.registry/publisher-provided"
#: A server name as the schema spells it: reverse DNS, one slash (`io.github.user/weather`).
SERVER_NAME_PATTERN = r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"


class McpTool(BaseModel):
    """One tool a server offers, as MCP's `tools/list` describes it (the fields indexed)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=PRINTABLE)
    title: str = Field(default="", max_length=256, pattern=PRINTABLE)
    description: str = Field(default="", max_length=4096)


class McpPublisherMeta(BaseModel):
    """`_meta["io.modelcontextprotocol.registry/publisher-provided"]`: the tools, if listed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tools: list[McpTool] = Field(default_factory=list)


class McpMeta(BaseModel):
    """A server's `_meta`: reverse-DNS keys; only the publisher-provided one is read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    publisher_provided: McpPublisherMeta | None = Field(default=None, alias=PUBLISHER_META)


class McpRemote(BaseModel):
    """A hosted server: its MCP transport and url (a network endpoint)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["streamable-http", "sse"]
    url: str = Field(min_length=1, max_length=2048, pattern=URL_PATTERN)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        check_url("http", url)
        return url


class McpPackageTransport(BaseModel):
    """How a locally run package speaks MCP."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["stdio", "streamable-http", "sse"]


class McpPackage(BaseModel):
    """A package a client installs and runs itself (npm, pypi, nuget, oci, mcpb...)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    registry_type: str = Field(alias="registryType", min_length=1, max_length=64, pattern=PRINTABLE)
    identifier: str = Field(min_length=1, max_length=2048, pattern=PRINTABLE)
    transport: McpPackageTransport


class McpServer(BaseModel):
    """The fields of a `server.json` the registry reads, with the schema's bounds."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=3, max_length=200, pattern=SERVER_NAME_PATTERN)
    description: str = Field(min_length=1, max_length=100)
    version: str = Field(max_length=255, pattern=PRINTABLE)
    title: str | None = Field(default=None, min_length=1, max_length=100)
    remotes: list[McpRemote] = Field(default_factory=list)
    packages: list[McpPackage] = Field(default_factory=list)
    meta: McpMeta = Field(default_factory=McpMeta, alias="_meta")

    @property
    def tools(self) -> list[McpTool]:
        """The tools the publisher listed (none when it listed none)."""
        provided = self.meta.publisher_provided
        return provided.tools if provided is not None else []

    def endpoints(self) -> list[Endpoint]:
        """One endpoint per remote: transport `http`, protocol `mcp`, binding = MCP transport."""
        found = [
            Endpoint(transport="http", protocol="mcp", binding=remote.type, url=remote.url)
            for remote in self.remotes
        ]
        return list(dict.fromkeys(found))

    def no_endpoint_reason(self) -> str | None:
        """Why the server has no network endpoint, or None when it has a remote."""
        if self.remotes:
            return None
        if not self.packages:
            return "the MCP server declares neither remotes nor packages"
        transports = ", ".join(sorted({p.transport.type for p in self.packages}))
        return f"local only: the MCP server runs from its packages ({transports})"


def is_mcp_server_json(card: dict[str, Any]) -> bool:
    """Whether the card is a `server.json`: it names the official schema, or it has a
    reverse-DNS name with a slash and `remotes` or `packages` (no A2A card has either)."""
    schema = card.get("$schema")
    if isinstance(schema, str) and schema.startswith(MCP_SCHEMA_PREFIX):
        return schema.endswith(MCP_SCHEMA_SUFFIX)
    name = card.get("name")
    return (
        isinstance(name, str) and name.count("/") == 1 and ("remotes" in card or "packages" in card)
    )
