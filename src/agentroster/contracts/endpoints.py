"""Endpoints: how to reach an agent, over HTTP or a queue, whatever its protocol.

An endpoint is derived from an A2A card (v0.3 `url` + `preferredTransport` +
`additionalInterfaces`; v1.0 `supportedInterfaces[]`) or given explicitly for MCP, ACP and
custom agents. An `amqp://` or `amqps://` url is a queue endpoint: its query names the
exchange and routing key (`?exchange=E&routing_key=K`, or `?queue=Q` for the default exchange).

Every field is bounded and free of control characters, and a url's scheme fits its transport:
`http(s)` for `http`, `amqp(s)` for `amqp`, and for any other transport an absolute URI whose
scheme is not one a client would run or read locally (`javascript:`, `data:`, `file:`...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The A2A core protocol bindings, spelled exactly as the specification does.
CORE_BINDINGS = ("JSONRPC", "GRPC", "HTTP+JSON")
#: The binding of an interface that names none (the v0.3 `preferredTransport` default).
DEFAULT_BINDING = "JSONRPC"
#: The card-level `protocolVersion` of a v0.3 card that does not say (the v0.3 schema default).
DEFAULT_V03_PROTOCOL_VERSION = "0.3.0"
#: The binding URI agentroster uses for an A2A interface reached through AMQP 0-9-1.
AMQP_BINDING_URI = "urn:agentroster:binding:amqp-0-9-1"
AMQP_SCHEMES = ("amqp", "amqps")
HTTP_SCHEMES = ("http", "https")
#: Url schemes no endpoint may have: a client following them would run code or read local
#: data instead of reaching an agent.
FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "vbscript", "data", "file", "blob", "filesystem", "about", "jar", "view-source"}
)
#: A url scheme as RFC 3986 spells it.
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
#: No control characters (C0, DEL, C1): they would end a log line or a header early.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: A url: printable and without spaces.
URL_PATTERN = r"^[^\x00-\x20\x7f-\x9f]+$"
#: The longest AMQP exchange name or routing key (a short string).
AMQP_NAME_MAX = 255


class Endpoint(BaseModel):
    """One way to reach an agent: an HTTP url, or an AMQP exchange and routing key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transport: str = Field(
        description="`http`, `amqp`, or another transport such as `azure-service-bus`.",
        examples=["http", "amqp"],
        min_length=1,
        max_length=64,
        pattern=PRINTABLE,
    )
    protocol: str = Field(
        description="`a2a`, `mcp`, `acp` or `custom`.",
        examples=["a2a"],
        min_length=1,
        max_length=64,
        pattern=PRINTABLE,
    )
    protocol_version: str | None = Field(
        default=None, examples=["1.0"], max_length=32, pattern=PRINTABLE
    )
    binding: str | None = Field(
        default=None,
        description="Protocol binding: for A2A `JSONRPC`, `GRPC`, `HTTP+JSON`, or a URI for "
        "custom ones; for MCP its transport, `streamable-http` or `sse`.",
        examples=["JSONRPC", AMQP_BINDING_URI, "streamable-http"],
        max_length=256,
        pattern=PRINTABLE,
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=URL_PATTERN,
        description="An absolute URI whose scheme fits the transport: `http` or `https` for "
        "`http`, `amqp` or `amqps` for `amqp`; for other transports any scheme but those a "
        "client would run or read locally (`javascript`, `vbscript`, `data`, `file`, `blob`, "
        "`filesystem`, `about`, `jar`, `view-source`).",
        examples=["https://weather.example/a2a"],
    )
    exchange: str | None = Field(
        default=None,
        max_length=AMQP_NAME_MAX,
        pattern=PRINTABLE,
        description="AMQP exchange; empty routes to the queue named by the key.",
    )
    routing_key: str | None = Field(default=None, max_length=AMQP_NAME_MAX, pattern=PRINTABLE)

    @model_validator(mode="after")
    def _addressable(self) -> Endpoint:
        if self.url is None and self.routing_key is None:
            raise ValueError("an endpoint needs a url, or an exchange and routing_key")
        if self.url is not None:
            check_url(self.transport, self.url)
        return self


def check_url(transport: str, url: str) -> None:
    """Raise `ValueError` unless `url` is an absolute URI whose scheme fits `transport`.

    `http` takes `http(s)://host...`, `amqp` takes `amqp(s)://host...`; any other transport an
    absolute URI with a well-formed scheme that is not in `FORBIDDEN_SCHEMES`.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"the url is not a valid URI ({exc})") from None
    scheme, kind = parts.scheme.lower(), transport.lower()
    if kind == "http":
        if scheme not in HTTP_SCHEMES or not host:
            raise ValueError("an http endpoint's url must be http:// or https:// with a host")
    elif kind == "amqp":
        if scheme not in AMQP_SCHEMES or not host:
            raise ValueError("an amqp endpoint's url must be amqp:// or amqps:// with a host")
    elif not _SCHEME.fullmatch(scheme):
        raise ValueError("the url must be an absolute URI with a scheme")
    elif scheme in FORBIDDEN_SCHEMES:
        raise ValueError(f"the url scheme {scheme!r} is not allowed for an endpoint")


def endpoint_from_url(
    url: str, *, protocol: str, binding: str | None, protocol_version: str | None
) -> Endpoint:
    """Build an endpoint from a card's url: `amqp(s)://` becomes a queue endpoint."""
    parts = urlsplit(url)
    if parts.scheme in AMQP_SCHEMES:
        query = parse_qs(parts.query)
        queue = query.get("queue", [None])[0]
        exchange = query.get("exchange", [""])[0]
        routing_key = query.get("routing_key", [queue])[0]
        return Endpoint(
            transport="amqp",
            protocol=protocol,
            protocol_version=protocol_version,
            binding=binding,
            url=url,
            exchange=exchange,
            routing_key=routing_key,
        )
    return Endpoint(
        transport="http" if parts.scheme in ("http", "https", "") else parts.scheme,
        protocol=protocol,
        protocol_version=protocol_version,
        binding=binding,
        url=url,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class A2AInterface:
    """One url an A2A card names, with its protocol binding and the A2A version spoken there."""

    url: str
    binding: str
    protocol_version: str


def a2a_v03_interfaces(card: dict[str, Any]) -> list[A2AInterface]:
    """The interfaces of an A2A v0.3 card: `url` + `preferredTransport` first, then
    `additionalInterfaces` (`url` + `transport`), all at the card's `protocolVersion`;
    duplicates dropped, the first kept.

    The one reading of a v0.3 card's connection fields: endpoints derive from it, and the
    API's conversion to v1.0 (`api/a2a_conversion.py`) builds `supportedInterfaces` from it.
    """
    version = _str(card.get("protocolVersion")) or DEFAULT_V03_PROTOCOL_VERSION
    found: list[A2AInterface] = []
    if url := _str(card.get("url")):
        binding = _str(card.get("preferredTransport")) or DEFAULT_BINDING
        found.append(A2AInterface(url, binding, version))
    additional = card.get("additionalInterfaces")
    for interface in additional if isinstance(additional, list) else ():
        if isinstance(interface, dict) and (url := _str(interface.get("url"))):
            binding = _str(interface.get("transport")) or DEFAULT_BINDING
            found.append(A2AInterface(url, binding, version))
    return list(dict.fromkeys(found))


def endpoints_from_a2a_v03(card: dict[str, Any]) -> list[Endpoint]:
    """Endpoints of an A2A v0.3 card, one per interface (`a2a_v03_interfaces`)."""
    return _unique(
        [
            endpoint_from_url(
                i.url, protocol="a2a", binding=i.binding, protocol_version=i.protocol_version
            )
            for i in a2a_v03_interfaces(card)
        ]
    )


def endpoints_from_a2a_v10(card: dict[str, Any]) -> list[Endpoint]:
    """Endpoints of an A2A v1.0 card: one per `supportedInterfaces[]` entry."""
    found: list[Endpoint] = []
    for interface in card.get("supportedInterfaces") or ():
        if isinstance(interface, dict) and (url := _str(interface.get("url"))):
            found.append(
                endpoint_from_url(
                    url,
                    protocol="a2a",
                    binding=_str(interface.get("protocolBinding")) or "JSONRPC",
                    protocol_version=_str(interface.get("protocolVersion")) or "1.0",
                )
            )
    return _unique(found)


def _unique(endpoints: list[Endpoint]) -> list[Endpoint]:
    seen: set[Endpoint] = set()
    return [e for e in endpoints if not (e in seen or seen.add(e))]  # type: ignore[func-returns-value]
