"""Convert A2A agent cards between v0.3 and v1.0, as plain JSON objects (served by the API).

A v0.3 card's connection fields are read by `contracts.endpoints.a2a_v03_interfaces`, the same
reading the registry derives endpoints with.

The registry keeps every card exactly as registered; these functions serve it in the other A2A
version to a client that asks for one (`A2A-Version`). They work on the card's JSON and never
import the a2a SDK; the field mapping follows the SDK's own (`a2a.compat.v0_3.conversions` and
the legacy handling of `a2a.client.card_resolver.parse_agent_card`):

    v0.3                                    v1.0
    url + preferredTransport (JSONRPC),     supportedInterfaces[{url, protocolBinding,
      additionalInterfaces[{url, transport}]  protocolVersion}], main one first, no duplicates
    protocolVersion (card, 0.3.0)           each interface's protocolVersion
    supportsAuthenticatedExtendedCard       capabilities.extendedAgentCard
    capabilities.stateTransitionHistory     (none: dropped)
    security: [{s: [scopes]}]               securityRequirements: [{schemes: {s: {list: [..]}}}]
      (card and skills)                       (card and skills)
    securitySchemes.*: {type: apiKey, in}   {apiKeySecurityScheme: {location, ...}}
      type http, oauth2, openIdConnect,       httpAuthSecurityScheme, oauth2SecurityScheme,
      mutualTLS                               openIdConnectSecurityScheme, mtlsSecurityScheme
    oauth2 flows (several)                  flows (one: the first of authorizationCode,
                                              clientCredentials, implicit, password)
    (none: dropped going to v0.3)           interface tenant, deviceCode flow, pkceRequired

Everything else (name, skills, provider, extensions, unknown fields) is kept as it is. An
interface keeps its url and binding both ways, so a queue endpoint (an `amqp://` url with the
binding `urn:agentroster:binding:amqp-0-9-1`) survives, and core bindings stay `JSONRPC`,
`GRPC`, `HTTP+JSON`.

An interface's `protocolVersion` is the version of A2A spoken *at that url*: converting a card
does not change what the agent speaks, so a v0.3 card's interfaces keep the card's
`protocolVersion` (as the SDK's converters do: its client picks the v0.3 transport from it).
Going to v0.3, only the interfaces speaking a 0.x version (or stating none, which the spec reads
as 0.3) are kept: a v0.3 client talks 0.3 to every url of a v0.3 card, so a url that speaks only
1.0 has no place in it (and neither has its `tenant`, which v0.3 cannot say). A card with no
such interface has no v0.3 view: `VersionNotOffered`, which names the versions it does offer.
With more than one 0.x interface, `additionalInterfaces` lists them all, the main one included,
as the v0.3 schema recommends.

Versions are negotiated as the A2A specification says (section 3.6, Versioning): only
`Major.Minor` counts, so `1.0.1` asks for 1.0 and `0.3.5` for 0.3; a well-formed version this
registry does not serve (`1.1`, `0.2`, `2.0`) is `UnsupportedVersionError`, the spec's
`VersionNotSupportedError`.

A signed card (`signatures`) is never converted, since converting would break its signatures;
neither is a card that is not an A2A card. Both raise `CardNotConvertible`, and the caller
serves the card as registered.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any, Literal

import orjson

from agentroster.contracts.cards import card_bytes, card_format, is_a2a
from agentroster.contracts.endpoints import (
    DEFAULT_BINDING,
    DEFAULT_V03_PROTOCOL_VERSION,
    a2a_v03_interfaces,
)

A2AVersion = Literal["0.3", "1.0"]

#: The A2A versions cards are served in, by `Major.Minor`.
SUPPORTED_VERSIONS: tuple[A2AVersion, ...] = ("0.3", "1.0")
_NUMBER = r"(0|[1-9][0-9]{0,3})"
#: What a version must look like: `Major.Minor`, maybe with a patch number (ignored).
VERSION_PATTERN = rf"^\s*{_NUMBER}\.{_NUMBER}(\.{_NUMBER})?\s*$"
_VERSION = re.compile(VERSION_PATTERN)
#: v0.3 `securitySchemes[*].type` -> the v1.0 `SecurityScheme` member that holds it.
_SCHEME_TYPES = {
    "apiKey": "apiKeySecurityScheme",
    "http": "httpAuthSecurityScheme",
    "oauth2": "oauth2SecurityScheme",
    "openIdConnect": "openIdConnectSecurityScheme",
    "mutualTLS": "mtlsSecurityScheme",
}
_SCHEME_MEMBERS = {member: kind for kind, member in _SCHEME_TYPES.items()}
#: The OAuth flows both versions know; v1.0 allows one, the first of these a v0.3 card has.
_OAUTH_FLOWS = ("authorizationCode", "clientCredentials", "implicit", "password")
_V03_CONNECTION_FIELDS = ("url", "preferredTransport", "additionalInterfaces", "protocolVersion")


class UnsupportedVersionError(ValueError):
    """The requested A2A version is well formed but not one cards are served in (e.g. `1.1`)."""

    def __init__(self, version: str) -> None:
        accepted = ", ".join(SUPPORTED_VERSIONS)
        super().__init__(
            f"A2A version {version!r} is not supported: cards are served in {accepted}"
        )
        self.version = version


class InvalidVersionError(ValueError):
    """The requested A2A version is not a version at all (not `Major.Minor[.Patch]`)."""


class VersionNotOffered(ValueError):
    """The card has no interface speaking the requested A2A version, so it has no view in it.

    `offered` lists the `Major.Minor` versions its interfaces speak.
    """

    def __init__(self, version: A2AVersion, offered: list[str]) -> None:
        spoken = ", ".join(offered) or "none"
        super().__init__(
            f"the agent has no interface speaking A2A {version}; its interfaces speak: {spoken}"
        )
        self.version = version
        self.offered = offered


class CardNotConvertible(ValueError):
    """The card is served as registered instead: it is signed, or not an A2A card."""


class SignedCardError(CardNotConvertible):
    """The card carries `signatures`; converting it would invalidate them."""


class NotAnA2ACardError(CardNotConvertible):
    """The card is neither an A2A v0.3 nor an A2A v1.0 card (e.g. an MCP or custom card)."""


def major_minor(version: str) -> str | None:
    """`Major.Minor` of a version (`1.0.1` -> `1.0`); None when it is not a version."""
    match = _VERSION.match(version)
    return f"{match[1]}.{match[2]}" if match else None


def normalize_version(version: str) -> A2AVersion:
    """The served version a requested one means: its `Major.Minor`, the patch ignored.

    Raises `InvalidVersionError` for a value that is not a version and
    `UnsupportedVersionError` for a version cards are not served in.
    """
    requested = major_minor(version)
    if requested is None:
        raise InvalidVersionError(f"{version!r} is not an A2A version (Major.Minor)")
    for supported in SUPPORTED_VERSIONS:
        if requested == supported:
            return supported
    raise UnsupportedVersionError(requested)


def is_signed(card: dict[str, Any]) -> bool:
    """Whether the card carries signatures (a non-empty `signatures`)."""
    return bool(card.get("signatures"))


def convert_card(card: dict[str, Any], version: str) -> dict[str, Any]:
    """The card in A2A `version` (`0.3` or `1.0`, any patch number).

    Returns `card` itself (not a copy) when it is already in that version, so a caller can
    serve the bytes it stored: `convert_card(card, v) is card`. Raises
    `UnsupportedVersionError` or `InvalidVersionError` for any other version,
    `CardNotConvertible` for a signed card or a card that is not an A2A card, and
    `VersionNotOffered` for a v1.0 card none of whose interfaces speaks 0.x asked for as 0.3
    (all ValueErrors).
    """
    target = normalize_version(version)
    _check_convertible(card)
    if card_format(card) == f"a2a/{target}":
        return card
    return to_a2a_v03(card) if target == "0.3" else to_a2a_v10(card)


def converted_card_bytes(stored: bytes, version: str) -> bytes | None:
    """A stored card's bytes converted to A2A `version`; None when it is served as stored.

    None when the card is already in that version, is signed, is not an A2A card (or not a
    JSON object at all). Raises what `normalize_version` raises for a version it does not
    serve, and `VersionNotOffered` when no interface of the card speaks that version.
    """
    target = normalize_version(version)
    try:
        card = orjson.loads(stored)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(card, dict):
        return None
    try:
        converted = convert_card(card, target)
    except CardNotConvertible:
        return None
    return None if converted is card else card_bytes(converted)


def to_a2a_v10(card: dict[str, Any]) -> dict[str, Any]:
    """An A2A card as A2A v1.0 (a new object; a v1.0 card comes back as a copy)."""
    _check_convertible(card)
    if card_format(card) == "a2a/1.0":
        return copy.deepcopy(card)
    converted: dict[str, Any] = {}
    for key, value in card.items():
        if key in _V03_CONNECTION_FIELDS:
            if "supportedInterfaces" not in converted:
                converted["supportedInterfaces"] = _interfaces_v10(card)
        elif key == "supportsAuthenticatedExtendedCard":
            continue  # into capabilities, below
        elif key == "capabilities":
            converted[key] = _capabilities_v10(value)
        elif key == "security":
            converted["securityRequirements"] = _requirements_v10(value)
        elif key == "securitySchemes":
            converted[key] = _mapped_values(value, _scheme_v10)
        elif key == "skills":
            converted[key] = _mapped_items(value, _skill_v10)
        else:
            converted[key] = copy.deepcopy(value)
    extended = card.get("supportsAuthenticatedExtendedCard")
    if isinstance(extended, bool):
        capabilities = converted.setdefault("capabilities", {})
        if isinstance(capabilities, dict):
            capabilities.setdefault("extendedAgentCard", extended)
    return converted


def to_a2a_v03(card: dict[str, Any]) -> dict[str, Any]:
    """An A2A card as A2A v0.3 (a new object; a v0.3 card comes back as a copy).

    Only the interfaces speaking a 0.x version are kept; raises `VersionNotOffered` when the
    card has none (with a url): a v0.3 card needs one, and a v0.3 client speaks only 0.x.
    """
    _check_convertible(card)
    if card_format(card) == "a2a/0.3":
        return copy.deepcopy(card)
    every = _interfaces_of(card)
    interfaces = [i for i in every if _speaks_0x(i.get("protocolVersion"))]
    if not interfaces:
        offered = (major_minor(v) for i in every if isinstance(v := i.get("protocolVersion"), str))
        raise VersionNotOffered("0.3", sorted({v for v in offered if v is not None}))
    converted: dict[str, Any] = {}
    for key, value in card.items():
        if key == "supportedInterfaces":
            converted.update(_connection_v03(interfaces))
        elif key == "capabilities":
            converted[key] = _capabilities_v03(value)
            extended = value.get("extendedAgentCard") if isinstance(value, dict) else None
            if isinstance(extended, bool):
                converted["supportsAuthenticatedExtendedCard"] = extended
        elif key == "securityRequirements":
            converted["security"] = _requirements_v03(value)
        elif key == "securitySchemes":
            converted[key] = _mapped_values(value, _scheme_v03)
        elif key == "skills":
            converted[key] = _mapped_items(value, _skill_v03)
        else:
            converted[key] = copy.deepcopy(value)
    # what v0.3 requires and protobuf JSON leaves out when empty
    for key, default in (
        ("name", ""),
        ("description", ""),
        ("version", ""),
        ("capabilities", {}),
        ("defaultInputModes", []),
        ("defaultOutputModes", []),
        ("skills", []),
    ):
        converted.setdefault(key, default)
    return converted


# --- interfaces ---------------------------------------------------------------------------------


def _interfaces_v10(card: dict[str, Any]) -> list[dict[str, Any]]:
    """`url` + `preferredTransport`, then `additionalInterfaces`, as v1.0 interfaces."""
    return [
        {"url": i.url, "protocolBinding": i.binding, "protocolVersion": i.protocol_version}
        for i in a2a_v03_interfaces(card)
    ]


def _interfaces_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The v1.0 card's interfaces that have a url."""
    return [
        interface
        for interface in _list(card.get("supportedInterfaces"))
        if isinstance(interface, dict) and _text(interface.get("url"))
    ]


def _connection_v03(interfaces: list[dict[str, Any]]) -> dict[str, Any]:
    """The v0.3 connection fields of non-empty v1.0 interfaces that all speak 0.x."""
    pairs = list(
        dict.fromkeys(
            (i["url"], _text(i.get("protocolBinding")) or DEFAULT_BINDING) for i in interfaces
        )
    )
    connection: dict[str, Any] = {
        "url": pairs[0][0],
        "preferredTransport": pairs[0][1],
        "protocolVersion": interfaces[0].get("protocolVersion") or DEFAULT_V03_PROTOCOL_VERSION,
    }
    if len(pairs) > 1:  # the main one too, as v0.3 recommends: "for completeness"
        connection["additionalInterfaces"] = [{"url": u, "transport": t} for u, t in pairs]
    return connection


def _speaks_0x(version: Any) -> bool:
    """Whether an interface's `protocolVersion` is a 0.x version of A2A; none or an empty one
    counts too, as the spec reads an empty version as 0.3 (and the SDK's converter does)."""
    return not version or (isinstance(version, str) and version.split(".", 1)[0] == "0")


# --- capabilities, skills, security -------------------------------------------------------------


def _capabilities_v10(value: Any) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    return {k: copy.deepcopy(v) for k, v in value.items() if k != "stateTransitionHistory"}


def _capabilities_v03(value: Any) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    return {k: copy.deepcopy(v) for k, v in value.items() if k != "extendedAgentCard"}


def _skill_v10(skill: dict[str, Any]) -> dict[str, Any]:
    return {
        ("securityRequirements" if k == "security" else k): (
            _requirements_v10(v) if k == "security" else copy.deepcopy(v)
        )
        for k, v in skill.items()
    }


def _skill_v03(skill: dict[str, Any]) -> dict[str, Any]:
    converted = {
        ("security" if k == "securityRequirements" else k): (
            _requirements_v03(v) if k == "securityRequirements" else copy.deepcopy(v)
        )
        for k, v in skill.items()
    }
    for key, default in (("name", ""), ("description", ""), ("tags", [])):
        converted.setdefault(key, default)
    return converted


def _requirements_v10(value: Any) -> Any:
    """`[{scheme: [scopes]}]` -> `[{schemes: {scheme: {list: [scopes]}}}]`."""
    if not isinstance(value, list):
        return copy.deepcopy(value)
    return [
        {"schemes": {name: {"list": list(scopes or [])} for name, scopes in req.items()}}
        if isinstance(req, dict)
        else copy.deepcopy(req)
        for req in value
    ]


def _requirements_v03(value: Any) -> Any:
    """`[{schemes: {scheme: {list: [scopes]}}}]` -> `[{scheme: [scopes]}]`."""
    if not isinstance(value, list):
        return copy.deepcopy(value)
    converted = []
    for req in value:
        schemes = req.get("schemes") if isinstance(req, dict) else None
        if not isinstance(schemes, dict):
            converted.append(copy.deepcopy(req))
            continue
        converted.append(
            {
                name: list(scopes.get("list") or []) if isinstance(scopes, dict) else []
                for name, scopes in schemes.items()
            }
        )
    return converted


def _scheme_v10(scheme: dict[str, Any]) -> dict[str, Any]:
    """`{type: apiKey, in, name}` -> `{apiKeySecurityScheme: {location, name}}`, and so on."""
    kind = scheme.get("type")
    member = _SCHEME_TYPES.get(kind) if isinstance(kind, str) else None
    if member is None:
        return copy.deepcopy(scheme)  # a type neither version knows: left alone
    body = {k: copy.deepcopy(v) for k, v in scheme.items() if k != "type"}
    if member == "apiKeySecurityScheme" and "in" in body:
        body["location"] = body.pop("in")
    if member == "oauth2SecurityScheme" and isinstance(body.get("flows"), dict):
        flows = body["flows"]
        chosen = next((name for name in _OAUTH_FLOWS if flows.get(name) is not None), None)
        body["flows"] = {chosen: flows[chosen]} if chosen else {}
    return {member: body}


def _scheme_v03(scheme: dict[str, Any]) -> dict[str, Any]:
    """`{apiKeySecurityScheme: {location, name}}` -> `{type: apiKey, in, name}`, and so on."""
    members = [key for key in scheme if key in _SCHEME_MEMBERS]
    if len(scheme) != 1 or len(members) != 1 or not isinstance(scheme[members[0]], dict):
        return copy.deepcopy(scheme)
    member = members[0]
    body = copy.deepcopy(scheme[member])
    if member == "apiKeySecurityScheme" and "location" in body:
        body["in"] = body.pop("location")
    if member == "oauth2SecurityScheme" and isinstance(body.get("flows"), dict):
        body["flows"] = {
            name: _flow_v03(flow)
            for name, flow in body["flows"].items()
            if name in _OAUTH_FLOWS and isinstance(flow, dict)  # v0.3 has no deviceCode
        }
    return {"type": _SCHEME_MEMBERS[member], **body}


def _flow_v03(flow: dict[str, Any]) -> dict[str, Any]:
    converted = {k: v for k, v in flow.items() if k != "pkceRequired"}
    converted.setdefault("scopes", {})
    return converted


# --- helpers ------------------------------------------------------------------------------------


def _check_convertible(card: dict[str, Any]) -> None:
    if is_signed(card):
        raise SignedCardError("the card is signed: converting it would break its signatures")
    if not is_a2a(card_format(card)):
        raise NotAnA2ACardError("the card is not an A2A card (v0.3 or v1.0)")


def _mapped_items(value: Any, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if not isinstance(value, list):
        return copy.deepcopy(value)
    return [convert(item) if isinstance(item, dict) else copy.deepcopy(item) for item in value]


def _mapped_values(value: Any, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    return {
        key: convert(item) if isinstance(item, dict) else copy.deepcopy(item)
        for key, item in value.items()
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
