"""ACP agents as cards: the Agent Communication Protocol's agent manifest.

The format: `AgentManifest` and `Metadata` in the ACP OpenAPI specification (version 0.2.0),
https://github.com/i-am-bee/acp/blob/main/docs/spec/openapi.yaml, described at
https://agentcommunicationprotocol.dev/core-concepts/agent-manifest. The registry stores the
manifest as it arrived; these models check only the fields it reads (name, description, the
content types, `metadata.capabilities`, `tags` and `domains`), so a bad one is refused with its
path (`metadata.capabilities.0.name: ...`).

A manifest names no URL (an ACP server serves it at `GET /agents/{name}`), so an ACP agent's
endpoints are the ones it registers explicitly (protocol `acp`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from agentroster.contracts.endpoints import PRINTABLE

#: An ACP agent name: an RFC 1123 DNS label, as the specification's `AgentName` says.
AGENT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: A media range (`text/plain`, `image/*`, `*/*`), optionally with parameters.
MEDIA_RANGE_PATTERN = (
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[^\x00-\x1f\x7f-\x9f]*)?$"
)

#: A tag or domain: an index term, so printable and bounded.
AcpTerm = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
MediaRange = Annotated[str, Field(max_length=255, pattern=MEDIA_RANGE_PATTERN)]


class AcpCapability(BaseModel):
    """One capability of an agent: a human-readable name and what it provides."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=256, pattern=PRINTABLE)
    description: str = Field(max_length=4096)


class AcpMetadata(BaseModel):
    """The manifest's `metadata`: the fields discovery indexes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    capabilities: list[AcpCapability] = Field(default_factory=list)
    domains: list[AcpTerm] = Field(default_factory=list)
    tags: list[AcpTerm] = Field(default_factory=list)


class AcpManifest(BaseModel):
    """The fields of an ACP `AgentManifest` the registry reads, with the specification's rules."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=63, pattern=AGENT_NAME_PATTERN)
    description: str
    input_content_types: list[MediaRange] = Field(min_length=1)
    output_content_types: list[MediaRange] = Field(min_length=1)
    metadata: AcpMetadata = Field(default_factory=AcpMetadata)

    @property
    def terms(self) -> list[str]:
        """The manifest's tags and domains, each once, in their order."""
        return list(dict.fromkeys([*self.metadata.tags, *self.metadata.domains]))


def is_acp_manifest(card: dict[str, Any]) -> bool:
    """Whether the card is an ACP manifest: it has the two content-type lists ACP requires
    (A2A cards say `defaultInputModes`/`defaultOutputModes` instead)."""
    return "input_content_types" in card and "output_content_types" in card
