"""A2A card conversion between v0.3 and v1.0, checked against the a2a SDK's own types."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.compat.v0_3 import types as v03
from a2a.compat.v0_3.conversions import to_compat_agent_card, to_core_agent_card
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentCardSignature,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    APIKeySecurityScheme,
    AuthorizationCodeOAuthFlow,
    DeviceCodeOAuthFlow,
    HTTPAuthSecurityScheme,
    MutualTlsSecurityScheme,
    OAuth2SecurityScheme,
    OAuthFlows,
    OpenIdConnectSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.errors import VersionNotSupportedError
from google.protobuf.json_format import MessageToDict, ParseDict
from hypothesis import given
from hypothesis import strategies as st

from agentroster.api.a2a_conversion import (
    InvalidVersionError,
    NotAnA2ACardError,
    SignedCardError,
    UnsupportedVersionError,
    VersionNotOffered,
    convert_card,
    converted_card_bytes,
    major_minor,
    normalize_version,
    to_a2a_v03,
    to_a2a_v10,
)
from agentroster.contracts import AMQP_BINDING_URI, card_bytes, card_format, derive_endpoints
from tests.a2a_schemas import v03_card_validator

AMQP_URL = "amqp://broker.example/?queue=weather"
#: The official A2A v0.3.0 JSON schema's AgentCard (tests/a2a_schemas/README.md).
V03_SCHEMA = v03_card_validator()


# --- SDK-built cards ---------------------------------------------------------------------------


def v10_message(protocol_version: str = "1.0") -> AgentCard:
    """A v1.0 card using most of the schema: four interfaces (one on a queue), security, ..."""
    interfaces = [
        ("https://weather.example/a2a", "JSONRPC"),
        ("https://weather.example/grpc", "GRPC"),
        ("https://weather.example/rest", "HTTP+JSON"),
        (AMQP_URL, AMQP_BINDING_URI),
    ]
    return AgentCard(
        name="weather",
        description="Forecasts",
        version="2.1.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding=binding, protocol_version=protocol_version)
            for url, binding in interfaces
        ],
        provider=AgentProvider(organization="Example", url="https://example.com"),
        documentation_url="https://weather.example/docs",
        icon_url="https://weather.example/icon.png",
        capabilities=AgentCapabilities(
            streaming=True,
            push_notifications=False,
            extended_agent_card=True,
            extensions=[AgentExtension(uri="urn:ext:units", description="units", required=True)],
        ),
        security_schemes={
            "key": SecurityScheme(
                api_key_security_scheme=APIKeySecurityScheme(location="header", name="X-Key")
            ),
            "bearer": SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer", bearer_format="JWT"
                )
            ),
            "oauth": SecurityScheme(
                oauth2_security_scheme=OAuth2SecurityScheme(
                    flows=OAuthFlows(
                        authorization_code=AuthorizationCodeOAuthFlow(
                            authorization_url="https://auth.example/authorize",
                            token_url="https://auth.example/token",
                            scopes={"read": "read forecasts"},
                        )
                    ),
                    oauth2_metadata_url="https://auth.example/.well-known/oauth",
                )
            ),
            "oidc": SecurityScheme(
                open_id_connect_security_scheme=OpenIdConnectSecurityScheme(
                    open_id_connect_url="https://auth.example/.well-known/openid-configuration"
                )
            ),
            "mtls": SecurityScheme(
                mtls_security_scheme=MutualTlsSecurityScheme(description="client certs")
            ),
        },
        security_requirements=[
            SecurityRequirement(schemes={"key": StringList(list=[])}),
            SecurityRequirement(schemes={"oauth": StringList(list=["read"])}),
        ],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/json"],
        skills=[
            AgentSkill(
                id="forecast",
                name="Forecast",
                description="Weather for a place",
                tags=["weather"],
                examples=["Rain in Oslo?"],
                security_requirements=[SecurityRequirement(schemes={"key": StringList(list=[])})],
            ),
            AgentSkill(id="alerts", name="Alerts", description="Storm alerts", tags=["weather"]),
        ],
    )


def v10_card(protocol_version: str = "1.0") -> dict[str, Any]:
    """The v1.0 card as the JSON an agent registers (protobuf JSON, camelCase)."""
    card: dict[str, Any] = MessageToDict(v10_message(protocol_version))
    return card


def v03_model() -> v03.AgentCard:
    """A v0.3 card using most of the schema, with a queue among its additional interfaces."""
    return v03.AgentCard(
        name="weather",
        description="Forecasts",
        version="2.1.0",
        url="https://weather.example/a2a",
        preferred_transport="JSONRPC",
        additional_interfaces=[
            v03.AgentInterface(url="https://weather.example/a2a", transport="JSONRPC"),
            v03.AgentInterface(url="https://weather.example/grpc", transport="GRPC"),
            v03.AgentInterface(url="https://weather.example/rest", transport="HTTP+JSON"),
            v03.AgentInterface(url=AMQP_URL, transport=AMQP_BINDING_URI),
        ],
        provider=v03.AgentProvider(organization="Example", url="https://example.com"),
        documentation_url="https://weather.example/docs",
        icon_url="https://weather.example/icon.png",
        capabilities=v03.AgentCapabilities(
            streaming=True,
            push_notifications=False,
            state_transition_history=True,
            extensions=[v03.AgentExtension(uri="urn:ext:units", description="u", required=True)],
        ),
        supports_authenticated_extended_card=True,
        security_schemes={
            "key": v03.SecurityScheme(
                root=v03.APIKeySecurityScheme(in_=v03.In.header, name="X-Key")
            ),
            "bearer": v03.SecurityScheme(
                root=v03.HTTPAuthSecurityScheme(scheme="bearer", bearer_format="JWT")
            ),
            "oauth": v03.SecurityScheme(
                root=v03.OAuth2SecurityScheme(
                    flows=v03.OAuthFlows(
                        authorization_code=v03.AuthorizationCodeOAuthFlow(
                            authorization_url="https://auth.example/authorize",
                            token_url="https://auth.example/token",
                            scopes={"read": "read forecasts"},
                        )
                    )
                )
            ),
            "oidc": v03.SecurityScheme(
                root=v03.OpenIdConnectSecurityScheme(
                    open_id_connect_url="https://auth.example/.well-known/openid-configuration"
                )
            ),
            "mtls": v03.SecurityScheme(root=v03.MutualTLSSecurityScheme(description="certs")),
        },
        security=[{"key": []}, {"oauth": ["read"]}],
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            v03.AgentSkill(
                id="forecast",
                name="Forecast",
                description="Weather for a place",
                tags=["weather"],
                security=[{"key": []}],
            )
        ],
    )


def v03_card() -> dict[str, Any]:
    """The v0.3 card as the JSON an agent registers."""
    card: dict[str, Any] = v03_model().model_dump(mode="json", by_alias=True, exclude_none=True)
    return card


def parse_v10(card: dict[str, Any]) -> AgentCard:
    """Parse strictly (unknown fields are errors) with the SDK."""
    parsed = AgentCard()
    ParseDict(card, parsed)
    return parsed


def pairs(interfaces: list[dict[str, Any]], binding: str) -> list[tuple[str, str]]:
    return [(i["url"], i[binding]) for i in interfaces]


# --- v0.3 -> v1.0 ------------------------------------------------------------------------------


def test_v03_to_v10_parses_with_the_sdk_and_lists_every_interface_once() -> None:
    """url + preferredTransport first, then additionalInterfaces, deduplicated; SDK-valid."""
    converted = to_a2a_v10(v03_card())

    parsed = parse_v10(converted)  # strict: a field v1.0 does not know would fail here
    assert card_format(converted) == "a2a/1.0"
    assert converted["supportedInterfaces"] == [
        {"url": url, "protocolBinding": binding, "protocolVersion": "0.3.0"}
        for url, binding in [
            ("https://weather.example/a2a", "JSONRPC"),
            ("https://weather.example/grpc", "GRPC"),
            ("https://weather.example/rest", "HTTP+JSON"),
            (AMQP_URL, AMQP_BINDING_URI),
        ]
    ]
    for gone in ("url", "preferredTransport", "additionalInterfaces", "protocolVersion"):
        assert gone not in converted
    assert "supportsAuthenticatedExtendedCard" not in converted
    assert "security" not in converted
    assert parsed.capabilities.extended_agent_card is True


def test_v03_to_v10_agrees_with_the_sdk_converter_beyond_interfaces() -> None:
    """Every field but the interfaces equals what a2a's to_core_agent_card makes of the card.

    (The SDK lists the main interface twice when additionalInterfaces repeats it, and labels
    the additional ones `0.3` but the main one `0.3.0`; the interfaces are checked above.)
    """
    ours = parse_v10(to_a2a_v10(v03_card()))
    sdk = to_core_agent_card(v03_model())
    del ours.supported_interfaces[:]
    del sdk.supported_interfaces[:]
    assert MessageToDict(ours) == MessageToDict(sdk)


def test_v03_to_v10_equals_what_the_sdk_card_resolver_reads() -> None:
    """The SDK's resolver reads a v0.3 card as v1.0 itself: the same card as our conversion
    (its interfaces too, once its repeat of the main one is dropped)."""
    ours = parse_v10(to_a2a_v10(v03_card()))
    resolved = parse_agent_card(v03_card())
    theirs = [MessageToDict(i) for i in resolved.supported_interfaces]
    assert [i for n, i in enumerate(theirs) if i not in theirs[:n]] == [
        MessageToDict(i) for i in ours.supported_interfaces
    ]
    del ours.supported_interfaces[:]
    del resolved.supported_interfaces[:]
    assert MessageToDict(ours) == MessageToDict(resolved)


def test_v03_interfaces_keep_the_version_they_speak() -> None:
    """An interface's protocolVersion is what the agent speaks there: the v0.3 card's."""
    card = {**v03_card(), "protocolVersion": "0.3.0"}
    versions = {i["protocolVersion"] for i in to_a2a_v10(card)["supportedInterfaces"]}
    assert versions == {"0.3.0"}
    del card["protocolVersion"]
    versions = {i["protocolVersion"] for i in to_a2a_v10(card)["supportedInterfaces"]}
    assert versions == {"0.3.0"}


def test_v03_without_transport_means_jsonrpc() -> None:
    """No preferredTransport (or transport) is JSONRPC, the v0.3 default."""
    card = {
        "name": "w",
        "url": "https://w/a2a",
        "additionalInterfaces": [{"url": "https://w/other"}],
    }
    assert pairs(to_a2a_v10(card)["supportedInterfaces"], "protocolBinding") == [
        ("https://w/a2a", "JSONRPC"),
        ("https://w/other", "JSONRPC"),
    ]


def test_v03_to_v10_keeps_unknown_fields_and_key_order() -> None:
    """Fields neither version defines are kept, in place; the interfaces take url's place."""
    card = {"zeta": 1, "name": "w", "url": "https://w", "x-extra": {"a": [1]}, "version": "1"}
    converted = to_a2a_v10(card)
    assert list(converted) == ["zeta", "name", "supportedInterfaces", "x-extra", "version"]
    assert converted["x-extra"] == {"a": [1]}


def test_v03_oauth_with_several_flows_keeps_one_as_v10_allows() -> None:
    """v1.0 `flows` is a oneof: the first of authorizationCode, clientCredentials, ... wins."""
    card = v03_card()
    card["securitySchemes"]["oauth"]["flows"]["password"] = {
        "tokenUrl": "https://auth.example/token",
        "scopes": {},
    }
    converted = to_a2a_v10(card)
    flows = converted["securitySchemes"]["oauth"]["oauth2SecurityScheme"]["flows"]
    assert list(flows) == ["authorizationCode"]
    parse_v10(converted)


# --- v1.0 -> v0.3 ------------------------------------------------------------------------------


def test_v10_to_v03_validates_with_the_sdk_v03_model_and_the_official_schema() -> None:
    """First interface -> url + preferredTransport, all of them in additionalInterfaces."""
    converted = to_a2a_v03(v10_card("0.3"))

    model = v03.AgentCard.model_validate(converted)
    V03_SCHEMA.validate(converted)
    assert card_format(converted) == "a2a/0.3"
    assert converted["url"] == "https://weather.example/a2a"
    assert converted["preferredTransport"] == "JSONRPC"
    assert converted["protocolVersion"] == "0.3"
    assert pairs(converted["additionalInterfaces"], "transport") == [
        ("https://weather.example/a2a", "JSONRPC"),
        ("https://weather.example/grpc", "GRPC"),
        ("https://weather.example/rest", "HTTP+JSON"),
        (AMQP_URL, AMQP_BINDING_URI),
    ]
    assert "supportedInterfaces" not in converted
    assert converted["supportsAuthenticatedExtendedCard"] is True
    assert "extendedAgentCard" not in converted["capabilities"]
    assert converted["security"] == [{"key": []}, {"oauth": ["read"]}]
    assert converted["skills"][0]["security"] == [{"key": []}]
    assert converted["securitySchemes"]["key"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Key",
    }
    assert model.security_schemes is not None
    assert isinstance(model.security_schemes["oauth"].root, v03.OAuth2SecurityScheme)
    assert isinstance(model.security_schemes["mtls"].root, v03.MutualTLSSecurityScheme)


def test_v10_to_v03_agrees_with_the_sdk_converter_beyond_interfaces() -> None:
    """On a card whose interfaces speak 0.3 (the SDK refuses others), every field but the
    additional interfaces equals a2a's to_compat_agent_card; those differ only in that ours
    repeat the main interface, as the v0.3 schema recommends."""
    message = v10_message(protocol_version="0.3")
    ours = v03.AgentCard.model_validate(to_a2a_v03(MessageToDict(message)))
    sdk = to_compat_agent_card(message)
    assert ours.additional_interfaces is not None
    assert sdk.additional_interfaces is not None
    assert ours.additional_interfaces[1:] == sdk.additional_interfaces
    ours.additional_interfaces = sdk.additional_interfaces = None
    assert ours.model_dump(exclude_none=True) == sdk.model_dump(exclude_none=True)


def mixed_card() -> dict[str, Any]:
    """A v1.0 card whose agent speaks 1.0 (for a tenant) at one url and 0.3 at two others."""
    return {
        "name": "w",
        "version": "1",
        "supportedInterfaces": [
            {
                "url": "https://w/v1",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
                "tenant": "acme",
            },
            {"url": "https://w/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {"url": "https://w/v03/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "0.3"},
        ],
    }


def test_v10_to_v03_lists_only_the_interfaces_speaking_0_x() -> None:
    """A v0.3 client speaks 0.3 to every url of a v0.3 card: a 1.0-only url is left out."""
    converted = to_a2a_v03(mixed_card())
    V03_SCHEMA.validate(converted)
    v03.AgentCard.model_validate(converted)
    assert converted["url"] == "https://w/v03"
    assert converted["protocolVersion"] == "0.3"
    assert pairs(converted["additionalInterfaces"], "transport") == [
        ("https://w/v03", "JSONRPC"),
        ("https://w/v03/rest", "HTTP+JSON"),
    ]
    assert "https://w/v1" not in orjson.dumps(converted).decode()


def test_the_sdk_reads_the_v03_view_back_as_interfaces_speaking_0_3() -> None:
    """The SDK's own v0.3 -> v1.0 converter gives every interface of our v0.3 view 0.3:
    exactly the interfaces that speak it, so its client never speaks 0.3 to a 1.0 url."""
    core = to_core_agent_card(v03.AgentCard.model_validate(to_a2a_v03(mixed_card())))
    assert {(i.url, i.protocol_version) for i in core.supported_interfaces} == {
        ("https://w/v03", "0.3"),
        ("https://w/v03/rest", "0.3"),
    }


def test_a_card_speaking_only_1_0_has_no_v03_view() -> None:
    """No interface speaks 0.x: `VersionNotOffered`, naming what it speaks (Major.Minor)."""
    card = v10_card("1.0.1")
    with pytest.raises(VersionNotOffered) as raised:
        to_a2a_v03(card)
    assert raised.value.offered == ["1.0"]
    assert "1.0" in str(raised.value)
    with pytest.raises(VersionNotOffered):
        converted_card_bytes(card_bytes(card), "0.3")
    # the SDK's converter refuses such a card too
    with pytest.raises(VersionNotSupportedError):
        to_compat_agent_card(v10_message("1.0"))


def test_v10_to_v03_fills_what_v03_requires_and_protobuf_json_leaves_out() -> None:
    """A minimal v1.0 card (protobuf JSON omits empty fields) still makes a valid v0.3 card."""
    minimal: dict[str, Any] = MessageToDict(
        AgentCard(
            name="w",
            supported_interfaces=[
                AgentInterface(url="https://w", protocol_binding="GRPC", protocol_version="0.3")
            ],
            skills=[AgentSkill(id="s", name="s")],
        )
    )
    converted = to_a2a_v03(minimal)
    v03.AgentCard.model_validate(converted)
    V03_SCHEMA.validate(converted)
    assert converted["preferredTransport"] == "GRPC"
    assert "additionalInterfaces" not in converted  # one interface: nothing additional
    assert converted["skills"] == [{"id": "s", "name": "s", "description": "", "tags": []}]


def test_v10_fields_v03_lacks_are_dropped() -> None:
    """deviceCode flows, pkceRequired and an interface's tenant have no v0.3 place."""
    message = v10_message("0.3")
    message.supported_interfaces[0].tenant = "acme"
    flows = message.security_schemes["oauth"].oauth2_security_scheme.flows
    flows.authorization_code.pkce_required = True
    device = SecurityScheme(
        oauth2_security_scheme=OAuth2SecurityScheme(
            flows=OAuthFlows(
                device_code=DeviceCodeOAuthFlow(
                    device_authorization_url="https://auth.example/device",
                    token_url="https://auth.example/token",
                )
            )
        )
    )
    message.security_schemes["device"].CopyFrom(device)
    converted = to_a2a_v03(MessageToDict(message))
    model = v03.AgentCard.model_validate(converted)
    schemes = converted["securitySchemes"]
    assert "pkceRequired" not in schemes["oauth"]["flows"]["authorizationCode"]
    assert schemes["device"] == {"type": "oauth2", "flows": {}}
    assert "tenant" not in orjson.dumps(converted).decode()
    assert model.url == "https://weather.example/a2a"


def test_v10_without_any_interface_url_has_no_v03_view() -> None:
    """A v0.3 card needs a url: without one there is no v0.3 view, and nothing is offered."""
    with pytest.raises(VersionNotOffered) as raised:
        to_a2a_v03({"name": "w", "supportedInterfaces": []})
    assert raised.value.offered == []


# --- both ways ---------------------------------------------------------------------------------


def test_round_trip_v03_v10_v03_keeps_the_interfaces() -> None:
    """v0.3 -> v1.0 -> v0.3: same url, transport, interfaces, and the same derived endpoints."""
    original = v03_card()
    back = to_a2a_v03(to_a2a_v10(original))
    v03.AgentCard.model_validate(back)
    for key in ("url", "preferredTransport", "protocolVersion", "additionalInterfaces"):
        assert back[key] == original[key], key
    assert derive_endpoints(back) == derive_endpoints(original)
    del original["capabilities"]["stateTransitionHistory"]  # v1.0 has no such capability
    assert back == original


def test_round_trip_v10_v03_v10_keeps_interfaces_speaking_0_3() -> None:
    """v1.0 -> v0.3 -> v1.0 for an agent speaking 0.3: the same interfaces, in order."""
    original = v10_card(protocol_version="0.3.0")
    back = to_a2a_v10(to_a2a_v03(original))
    assert back["supportedInterfaces"] == original["supportedInterfaces"]
    assert derive_endpoints(back) == derive_endpoints(original)
    assert parse_v10(back) == v10_message(protocol_version="0.3.0")


@pytest.mark.parametrize("convert", [to_a2a_v10, to_a2a_v03])
def test_queue_interface_keeps_its_url_and_custom_binding(convert: Any) -> None:
    """The amqp interface survives conversion with its url and binding URI: still a queue."""
    source = v03_card() if convert is to_a2a_v10 else v10_card("0.3")
    (queue,) = [e for e in derive_endpoints(convert(source)) if e.transport == "amqp"]
    assert queue.url == AMQP_URL
    assert queue.binding == AMQP_BINDING_URI
    assert (queue.exchange, queue.routing_key) == ("", "weather")


@pytest.mark.parametrize("convert", [to_a2a_v10, to_a2a_v03])
def test_core_binding_names_stay_exact(convert: Any) -> None:
    """JSONRPC, GRPC, HTTP+JSON come out spelled exactly as they went in."""
    source = v03_card() if convert is to_a2a_v10 else v10_card("0.3")
    bindings = {e.binding for e in derive_endpoints(convert(source))}
    assert bindings == {"JSONRPC", "GRPC", "HTTP+JSON", AMQP_BINDING_URI}


@pytest.mark.parametrize("convert", [to_a2a_v10, to_a2a_v03])
def test_conversion_leaves_its_input_alone(convert: Any) -> None:
    """Pure: the input card is not modified, and the output shares nothing with it."""
    source = v03_card() if convert is to_a2a_v10 else v10_card("0.3")
    before = copy.deepcopy(source)
    converted = convert(source)
    converted["skills"][0]["tags"].append("changed")
    assert source == before


transports = st.sampled_from(["JSONRPC", "GRPC", "HTTP+JSON", AMQP_BINDING_URI])
urls = st.sampled_from(["https://a/x", "https://b/y", "http://c:8080/", AMQP_URL])


@given(
    main=st.tuples(urls, transports),
    others=st.lists(st.tuples(urls, transports), max_size=5),
)
def test_round_trip_keeps_every_distinct_interface(
    main: tuple[str, str], others: list[tuple[str, str]]
) -> None:
    """Any v0.3 interfaces: through v1.0 and back, the main one and the set of all survive."""
    card = {
        "name": "w",
        "url": main[0],
        "preferredTransport": main[1],
        "additionalInterfaces": [{"url": u, "transport": t} for u, t in others],
    }
    v10 = to_a2a_v10(card)
    listed = pairs(v10["supportedInterfaces"], "protocolBinding")
    assert listed[0] == main
    assert len(listed) == len(set(listed)) == len({main, *others})
    back = to_a2a_v03(v10)
    assert (back["url"], back["preferredTransport"]) == main
    again = {(i["url"], i["transport"]) for i in back.get("additionalInterfaces", [])}
    assert again | {main} == {main, *others}
    assert derive_endpoints(back) == derive_endpoints(card)


# --- convert_card, signed and other cards ------------------------------------------------------


@pytest.mark.parametrize(
    ("given_version", "expected"),
    [
        ("0.3", "0.3"),
        ("0.3.0", "0.3"),
        ("0.3.5", "0.3"),
        ("1.0", "1.0"),
        ("1.0.0", "1.0"),
        ("1.0.1", "1.0"),
        (" 1.0 ", "1.0"),
    ],
)
def test_versions_accepted_by_major_minor(given_version: str, expected: str) -> None:
    """The patch number is not considered, as the A2A spec says (3.6 Versioning)."""
    assert normalize_version(given_version) == expected


@pytest.mark.parametrize("unsupported", ["1.1", "2.0", "0.2", "0.2.6", "1.10"])
def test_well_formed_versions_not_served_are_unsupported(unsupported: str) -> None:
    """A version that is one but not served: the error names it (Major.Minor) and those served."""
    with pytest.raises(UnsupportedVersionError) as raised:
        convert_card(v10_card(), unsupported)
    assert raised.value.version == ".".join(unsupported.split(".")[:2])
    assert "0.3, 1.0" in str(raised.value)


@pytest.mark.parametrize("bad", ["", "1", "v1.0", "0.3,1.0", "latest", "1.0-rc", "01.0", "1.0.0.0"])
def test_values_that_are_no_version_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersionError):
        normalize_version(bad)
    assert major_minor(bad) is None


def test_convert_card_converts_both_ways() -> None:
    assert convert_card(v10_card("0.3"), "0.3") == to_a2a_v03(v10_card("0.3"))
    assert convert_card(v03_card(), "1.0.0") == to_a2a_v10(v03_card())


@pytest.mark.parametrize(("card", "version"), [(v10_card(), "1.0"), (v03_card(), "0.3.0")])
def test_a_card_already_in_that_version_is_returned_itself(
    card: dict[str, Any], version: str
) -> None:
    """No conversion: the very same object, so a server serves the bytes it stored."""
    assert convert_card(card, version) is card
    assert converted_card_bytes(card_bytes(card), version) is None


def signed(card: dict[str, Any]) -> dict[str, Any]:
    signature = AgentCardSignature(protected="eyJhbGciOiJFUzI1NiJ9", signature="c2ln")
    return {**card, "signatures": [MessageToDict(signature)]}


@pytest.mark.parametrize("card", [signed(v10_card()), signed(v03_card())])
def test_a_signed_card_is_never_converted(card: dict[str, Any]) -> None:
    """Converting would break its signatures: refused every way, so it is served as registered."""
    for version in ("0.3", "1.0"):
        other = "0.3" if card_format(card) == "a2a/1.0" else "1.0"
        if version == other:
            with pytest.raises(SignedCardError):
                convert_card(card, version)
        assert converted_card_bytes(card_bytes(card), version) is None
    with pytest.raises(SignedCardError):
        to_a2a_v03(card)
    with pytest.raises(SignedCardError):
        to_a2a_v10(card)


def test_an_empty_signatures_list_is_no_signature() -> None:
    card = {**v10_card("0.3"), "signatures": []}
    assert card_format(convert_card(card, "0.3")) == "a2a/0.3"


@pytest.mark.parametrize(
    "card", [{"name": "tools", "protocol": "mcp", "url_template": "x"}, {"name": "bare"}]
)
def test_a_card_that_is_no_a2a_card_is_not_converted(card: dict[str, Any]) -> None:
    for version in ("0.3", "1.0"):
        with pytest.raises(NotAnA2ACardError):
            convert_card(card, version)
        assert converted_card_bytes(card_bytes(card), version) is None


@pytest.mark.parametrize("stored", [b"[1, 2]", b"not json", b'"text"'])
def test_stored_bytes_that_are_no_json_object_are_served_as_stored(stored: bytes) -> None:
    assert converted_card_bytes(stored, "1.0") is None


def test_converted_card_bytes_are_the_compact_json_of_the_converted_card() -> None:
    stored = card_bytes(v03_card())
    assert converted_card_bytes(stored, "1.0") == card_bytes(to_a2a_v10(v03_card()))
    with pytest.raises(UnsupportedVersionError):
        converted_card_bytes(stored, "9.9")
