"""Endpoint derivation from A2A v0.3 and v1.0 cards, including amqp:// queue endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.compat.v0_3 import types as v03
from a2a.types import AgentCard, AgentInterface, AgentSkill
from google.protobuf.json_format import MessageToDict
from pydantic import ValidationError

from agentroster.contracts import AMQP_BINDING_URI, CORE_BINDINGS, Endpoint, derive_endpoints
from agentroster.contracts.endpoints import (
    endpoint_from_url,
    endpoints_from_a2a_v03,
    endpoints_from_a2a_v10,
)


def _http(url: str, binding: str, version: str) -> Endpoint:
    return Endpoint(
        transport="http", protocol="a2a", protocol_version=version, binding=binding, url=url
    )


# --- A2A v0.3 ----------------------------------------------------------------------------------


def test_v03_url_defaults_to_jsonrpc() -> None:
    """A v0.3 card's url without preferredTransport is a JSONRPC http endpoint."""
    card = {"name": "w", "url": "https://w.example/a2a", "protocolVersion": "0.3.0"}
    assert derive_endpoints(card) == [_http("https://w.example/a2a", "JSONRPC", "0.3.0")]


def test_v03_preferred_transport_is_the_binding() -> None:
    """preferredTransport names the binding of the main url."""
    card = {"url": "https://w.example/rest", "preferredTransport": "HTTP+JSON"}
    assert derive_endpoints(card) == [_http("https://w.example/rest", "HTTP+JSON", "0.3.0")]


def test_v03_protocol_version_defaults_to_0_3_0() -> None:
    """A v0.3 card without protocolVersion gets protocol_version 0.3.0."""
    (endpoint,) = derive_endpoints({"url": "https://w.example/a2a"})
    assert endpoint.protocol_version == "0.3.0"


def test_v03_protocol_version_is_carried() -> None:
    """A v0.3 card's protocolVersion is every endpoint's protocol_version."""
    card = {
        "url": "https://w.example/a2a",
        "protocolVersion": "0.3.1",
        "additionalInterfaces": [{"url": "https://w.example/grpc", "transport": "GRPC"}],
    }
    assert {e.protocol_version for e in derive_endpoints(card)} == {"0.3.1"}


def test_v03_additional_interfaces_follow_the_main_url() -> None:
    """additionalInterfaces add endpoints after the main url, in order, with their transport."""
    card = {
        "url": "https://w.example/a2a",
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [
            {"url": "https://w.example/grpc", "transport": "GRPC"},
            {"url": "https://w.example/rest", "transport": "HTTP+JSON"},
            {"url": "https://w.example/default"},
        ],
    }
    assert derive_endpoints(card) == [
        _http("https://w.example/a2a", "JSONRPC", "0.3.0"),
        _http("https://w.example/grpc", "GRPC", "0.3.0"),
        _http("https://w.example/rest", "HTTP+JSON", "0.3.0"),
        _http("https://w.example/default", "JSONRPC", "0.3.0"),
    ]


def test_v03_duplicate_interface_is_removed() -> None:
    """An additional interface repeating the main url and transport appears once."""
    card = {
        "url": "https://w.example/a2a",
        "additionalInterfaces": [
            {"url": "https://w.example/a2a", "transport": "JSONRPC"},
            {"url": "https://w.example/grpc", "transport": "GRPC"},
            {"url": "https://w.example/grpc", "transport": "GRPC"},
        ],
    }
    assert derive_endpoints(card) == [
        _http("https://w.example/a2a", "JSONRPC", "0.3.0"),
        _http("https://w.example/grpc", "GRPC", "0.3.0"),
    ]


def test_v03_same_url_different_transport_is_kept() -> None:
    """The same url with another transport is a different endpoint."""
    card = {
        "url": "https://w.example/a2a",
        "additionalInterfaces": [{"url": "https://w.example/a2a", "transport": "HTTP+JSON"}],
    }
    assert [e.binding for e in derive_endpoints(card)] == ["JSONRPC", "HTTP+JSON"]


def test_v03_ignores_malformed_interfaces() -> None:
    """Interfaces that are not objects or have no string url are skipped."""
    card: dict[str, Any] = {
        "url": "https://w.example/a2a",
        "additionalInterfaces": ["nope", {"transport": "GRPC"}, {"url": 5}, {"url": ""}],
    }
    assert derive_endpoints(card) == [_http("https://w.example/a2a", "JSONRPC", "0.3.0")]


def test_v03_without_url_has_only_additional_interfaces() -> None:
    """A v0.3 card with an empty url yields only its additional interfaces."""
    card = {
        "url": "",
        "additionalInterfaces": [{"url": "https://w.example/g", "transport": "GRPC"}],
    }
    assert endpoints_from_a2a_v03(card) == [_http("https://w.example/g", "GRPC", "0.3.0")]


# --- A2A v1.0 ----------------------------------------------------------------------------------


def test_v10_one_endpoint_per_supported_interface() -> None:
    """Each supportedInterfaces entry is one endpoint with its binding and version."""
    card = {
        "name": "w",
        "supportedInterfaces": [
            {
                "url": "https://w.example/a2a",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            },
            {"url": "https://w.example/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.1"},
            {"url": "https://w.example/rest", "protocolBinding": "HTTP+JSON"},
        ],
    }
    assert derive_endpoints(card) == [
        _http("https://w.example/a2a", "JSONRPC", "1.0"),
        _http("https://w.example/grpc", "GRPC", "1.1"),
        _http("https://w.example/rest", "HTTP+JSON", "1.0"),
    ]


def test_v10_defaults_binding_and_version() -> None:
    """An interface without protocolBinding/protocolVersion is JSONRPC, version 1.0."""
    card = {"supportedInterfaces": [{"url": "https://w.example/a2a"}]}
    assert derive_endpoints(card) == [_http("https://w.example/a2a", "JSONRPC", "1.0")]


def test_v10_duplicates_removed_and_malformed_skipped() -> None:
    """Repeated interfaces appear once; entries without a url are skipped."""
    iface = {"url": "https://w.example/a2a", "protocolBinding": "JSONRPC"}
    card: dict[str, Any] = {
        "supportedInterfaces": [iface, dict(iface), {"protocolBinding": "X"}, 3]
    }
    assert endpoints_from_a2a_v10(card) == [_http("https://w.example/a2a", "JSONRPC", "1.0")]


def test_v10_empty_interfaces_give_no_endpoints() -> None:
    """A v1.0 card with no interfaces has no endpoints."""
    assert derive_endpoints({"supportedInterfaces": []}) == []


# --- amqp:// urls ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_amqp_url_with_queue_uses_default_exchange(scheme: str) -> None:
    """`amqp(s)://...?queue=Q` is an amqp endpoint on the default exchange, routing key Q."""
    url = f"{scheme}://broker.example:5672/vhost?queue=weather.requests"
    endpoint = endpoint_from_url(
        url, protocol="a2a", binding=AMQP_BINDING_URI, protocol_version="1.0"
    )
    assert endpoint == Endpoint(
        transport="amqp",
        protocol="a2a",
        protocol_version="1.0",
        binding=AMQP_BINDING_URI,
        url=url,
        exchange="",
        routing_key="weather.requests",
    )


@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_amqp_url_with_exchange_and_routing_key(scheme: str) -> None:
    """`amqp(s)://...?exchange=E&routing_key=K` is an amqp endpoint with that exchange and key."""
    url = f"{scheme}://broker.example/?exchange=agents&routing_key=weather.eu"
    endpoint = endpoint_from_url(url, protocol="a2a", binding=None, protocol_version=None)
    assert endpoint.transport == "amqp"
    assert endpoint.exchange == "agents"
    assert endpoint.routing_key == "weather.eu"
    assert endpoint.url == url


def test_amqp_routing_key_wins_over_queue() -> None:
    """With both queue and routing_key, routing_key is the key."""
    url = "amqp://b/?queue=q&exchange=x&routing_key=k"
    endpoint = endpoint_from_url(url, protocol="a2a", binding=None, protocol_version=None)
    assert (endpoint.exchange, endpoint.routing_key) == ("x", "k")


def test_amqp_in_v03_card() -> None:
    """A v0.3 card whose url is amqp:// yields an amqp endpoint."""
    card = {"url": "amqps://b.example/?queue=weather", "preferredTransport": AMQP_BINDING_URI}
    (endpoint,) = derive_endpoints(card)
    assert endpoint.transport == "amqp"
    assert endpoint.binding == AMQP_BINDING_URI
    assert (endpoint.exchange, endpoint.routing_key) == ("", "weather")


def test_amqp_in_v10_card() -> None:
    """A v1.0 interface with an amqp:// url and the agentroster binding URI is a queue endpoint."""
    card = {
        "supportedInterfaces": [
            {"url": "https://w.example/a2a", "protocolBinding": "JSONRPC"},
            {
                "url": "amqp://b.example/?exchange=agents&routing_key=agent.weather",
                "protocolBinding": AMQP_BINDING_URI,
                "protocolVersion": "1.0",
            },
        ]
    }
    http, amqp = derive_endpoints(card)
    assert http.transport == "http"
    assert amqp.transport == "amqp"
    assert amqp.binding == AMQP_BINDING_URI
    assert (amqp.exchange, amqp.routing_key) == ("agents", "agent.weather")


def test_other_scheme_is_its_own_transport() -> None:
    """A url with another scheme keeps the scheme as its transport."""
    endpoint = endpoint_from_url(
        "sb://ns.servicebus.windows.net/q", protocol="a2a", binding=None, protocol_version=None
    )
    assert endpoint.transport == "sb"


def test_http_and_https_are_http() -> None:
    """http:// and https:// urls are transport http without exchange or routing key."""
    for url in ("http://w.example/a2a", "https://w.example/a2a"):
        endpoint = endpoint_from_url(url, protocol="a2a", binding=None, protocol_version=None)
        assert endpoint.transport == "http"
        assert endpoint.exchange is None
        assert endpoint.routing_key is None


# --- generic cards and constants ---------------------------------------------------------------


def test_generic_card_has_no_endpoints() -> None:
    """A generic (MCP, ACP, custom) card declares no endpoints by itself."""
    assert derive_endpoints({"name": "tools", "protocol": "mcp", "skills": []}) == []
    assert derive_endpoints({}) == []


def test_core_bindings_spelled_as_the_spec() -> None:
    """The core binding names are exactly JSONRPC, GRPC and HTTP+JSON."""
    assert CORE_BINDINGS == ("JSONRPC", "GRPC", "HTTP+JSON")
    assert AMQP_BINDING_URI == "urn:agentroster:binding:amqp-0-9-1"


# --- official a2a-sdk cards --------------------------------------------------------------------


def test_sdk_v10_protobuf_card() -> None:
    """A v1.0 card built with a2a-sdk's protobuf AgentCard derives one endpoint per interface."""
    card = AgentCard(
        name="Weather Bot",
        description="Forecasts",
        version="1.2.0",
        supported_interfaces=[
            AgentInterface(
                url="https://w.example/a2a", protocol_binding="JSONRPC", protocol_version="1.0"
            ),
            AgentInterface(
                url="https://w.example/grpc", protocol_binding="GRPC", protocol_version="1.0"
            ),
            AgentInterface(
                url="amqp://b.example/?queue=weather",
                protocol_binding=AMQP_BINDING_URI,
                protocol_version="1.0",
            ),
        ],
        skills=[AgentSkill(id="forecast", name="Forecast", tags=["weather"])],
    )
    card_dict: dict[str, Any] = MessageToDict(card)
    endpoints = derive_endpoints(card_dict)
    assert [(e.transport, e.binding, e.protocol_version) for e in endpoints] == [
        ("http", "JSONRPC", "1.0"),
        ("http", "GRPC", "1.0"),
        ("amqp", AMQP_BINDING_URI, "1.0"),
    ]
    assert endpoints[2].routing_key == "weather"
    assert endpoints[2].exchange == ""
    assert {e.protocol for e in endpoints} == {"a2a"}


def test_sdk_v03_pydantic_card() -> None:
    """A v0.3 card built with a2a-sdk's compat pydantic AgentCard derives url + interfaces."""
    card = v03.AgentCard(
        name="Weather Bot",
        description="Forecasts",
        url="https://w.example/a2a",
        version="1.2.0",
        capabilities=v03.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        preferred_transport=v03.TransportProtocol.http_json,
        additional_interfaces=[
            v03.AgentInterface(transport="HTTP+JSON", url="https://w.example/a2a"),
            v03.AgentInterface(transport="GRPC", url="https://w.example/grpc"),
        ],
        skills=[v03.AgentSkill(id="forecast", name="Forecast", description="d", tags=["weather"])],
    )
    card_dict = card.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert derive_endpoints(card_dict) == [
        _http("https://w.example/a2a", "HTTP+JSON", "0.3.0"),
        _http("https://w.example/grpc", "GRPC", "0.3.0"),
    ]


def test_sdk_v03_card_default_transport_is_jsonrpc() -> None:
    """The SDK's v0.3 default preferredTransport is JSONRPC, and so is the derived binding."""
    card = v03.AgentCard(
        name="Echo",
        description="Echoes",
        url="https://echo.example/",
        version="0.1.0",
        capabilities=v03.AgentCapabilities(),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[],
    )
    (endpoint,) = derive_endpoints(card.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert endpoint.binding == "JSONRPC"
    assert endpoint.protocol_version == "0.3.0"


# --- url schemes fit the transport ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "url"),
    [
        ("http", "javascript:alert(1)"),
        ("http", "data:text/html,<b>x</b>"),
        ("http", "file:///etc/passwd"),
        ("http", "amqp://b.example/"),
        ("http", "https://"),
        ("http", "w.example/a2a"),
        ("amqp", "http://b.example/"),
        ("amqp", "amqp:///"),
        ("sb", "javascript:alert(1)"),
        ("sb", "vbscript:x"),
        ("sb", "data:,x"),
        ("sb", "File:///x"),
        ("sb", "relative/path"),
        ("http", "https://[::1/a2a"),
    ],
)
def test_a_url_that_does_not_fit_its_transport_is_refused(transport: str, url: str) -> None:
    """http takes http(s) with a host, amqp takes amqp(s) with a host, and any other transport
    an absolute URI whose scheme a client would not run or read locally."""
    with pytest.raises(ValidationError):
        Endpoint(transport=transport, protocol="a2a", url=url)


@pytest.mark.parametrize("field", ["transport", "protocol", "binding", "exchange", "routing_key"])
def test_endpoint_strings_have_no_control_characters(field: str) -> None:
    """A newline or NUL in any endpoint string is refused (it would end a log line or header)."""
    fields = {"transport": "amqp", "protocol": "a2a", "exchange": "", "routing_key": "q"}
    for char in ("\n", "\x00", "\x9b"):
        with pytest.raises(ValidationError, match=field):
            Endpoint(**{**fields, field: f"a{char}b"})


def test_an_exchange_is_at_most_255_characters() -> None:
    """An AMQP exchange name is a short string: the contract says so (a 5 MB one was taken)."""
    Endpoint(transport="amqp", protocol="a2a", exchange="x" * 255, routing_key="k")
    with pytest.raises(ValidationError, match="exchange"):
        Endpoint(transport="amqp", protocol="a2a", exchange="x" * 256, routing_key="k")
