"""Pydantic models and names of the wire contract: commands, endpoints, events, topology."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agentroster.contracts import (
    CE_HEADERS,
    COMMAND_KINDS,
    COMMAND_MODELS,
    EVENT_KINDS,
    AgentEvent,
    AgentView,
    Deregister,
    Endpoint,
    Heartbeat,
    Register,
    Topology,
)

SENT_AT = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
COMMON: dict[str, Any] = {"agent_id": "weather", "instance_id": "w-1", "seq": 1, "sent_at": SENT_AT}


# --- commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Register, {"ttl_s": 30, "card": {}}),
        (Heartbeat, {"ttl_s": 30, "card_digest": "sha256:00"}),
        (Deregister, {}),
    ],
)
def test_commands_reject_extra_fields(
    model: type[Register | Heartbeat | Deregister], fields: dict[str, Any]
) -> None:
    """Every command is strict: an unknown field is a validation error."""
    model.model_validate({**COMMON, **fields})
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate({**COMMON, **fields, "colour": "blue"})


def test_commands_are_frozen() -> None:
    """Commands are immutable once built."""
    command = Deregister(**COMMON)
    with pytest.raises(ValidationError):
        command.seq = 2  # type: ignore[misc]  # frozen: assigning must fail, that is the test


def test_register_card_keeps_unknown_fields() -> None:
    """A register's card keeps every key it was given, known or not, through a JSON round trip."""
    card = {"name": "w", "x-vendor": {"nested": [1, {"deep": True}]}, "zzz": None, "aaa": 1.5}
    register = Register(**COMMON, ttl_s=30, card=card)
    again = Register.model_validate_json(register.model_dump_json())
    assert again.card == card
    assert list(again.card) == list(card)


def test_command_kind_is_not_in_the_body() -> None:
    """The kind travels in the routing key and AMQP type: a body that names it is invalid."""
    register = Register(**COMMON, ttl_s=30, card={})
    body = orjson.loads(register.model_dump_json())
    assert "kind" not in body
    with pytest.raises(ValidationError):
        Register.model_validate({**body, "kind": "register"})


def test_command_models_cover_every_kind() -> None:
    """COMMAND_MODELS maps each command kind to the model of that kind."""
    assert tuple(COMMAND_MODELS) == COMMAND_KINDS
    assert [m.__name__.lower() for m in COMMAND_MODELS.values()] == list(COMMAND_KINDS)


@pytest.mark.parametrize("seq", [0, -1])
def test_seq_starts_at_one(seq: int) -> None:
    """seq must be at least 1."""
    with pytest.raises(ValidationError):
        Deregister(**{**COMMON, "seq": seq})


@pytest.mark.parametrize("ttl_s", [0, -5])
def test_ttl_must_be_positive(ttl_s: float) -> None:
    """ttl_s must be positive (the registry then bounds it)."""
    with pytest.raises(ValidationError):
        Heartbeat(**COMMON, ttl_s=ttl_s, card_digest="sha256:00")


def test_register_labels_limits() -> None:
    """Label keys are 1-63 chars, values up to 256, at most 64 labels."""
    Register(**COMMON, ttl_s=30, card={}, labels={"k" * 63: "v" * 256})
    for labels in ({"": "v"}, {"k" * 64: "v"}, {"k": "v" * 257}, {f"k{i}": "v" for i in range(65)}):
        with pytest.raises(ValidationError):
            Register(**COMMON, ttl_s=30, card={}, labels=labels)


# --- endpoints ---------------------------------------------------------------------------------


def test_endpoint_requires_url_or_routing_key() -> None:
    """An endpoint without url and without routing_key is invalid."""
    with pytest.raises(ValidationError, match="needs a url"):
        Endpoint(transport="http", protocol="a2a")
    with pytest.raises(ValidationError):
        Endpoint(transport="amqp", protocol="a2a", exchange="agents")


def test_endpoint_with_url_only() -> None:
    """An endpoint with only a url is valid."""
    endpoint = Endpoint(transport="http", protocol="mcp", url="https://w/mcp")
    assert endpoint.routing_key is None


def test_endpoint_with_routing_key_only() -> None:
    """An endpoint with only a routing key (default exchange) is valid."""
    endpoint = Endpoint(transport="amqp", protocol="a2a", exchange="", routing_key="weather")
    assert endpoint.url is None


def test_endpoint_is_strict_and_hashable() -> None:
    """Endpoints reject unknown fields and are hashable (frozen)."""
    with pytest.raises(ValidationError):
        Endpoint.model_validate({"transport": "http", "protocol": "a2a", "url": "u", "x": 1})
    a = Endpoint(transport="http", protocol="a2a", url="https://w")
    b = Endpoint(transport="http", protocol="a2a", url="https://w")
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


@pytest.mark.parametrize("field", ["transport", "protocol"])
def test_endpoint_transport_and_protocol_not_empty(field: str) -> None:
    """transport and protocol are non-empty strings."""
    values = {"transport": "http", "protocol": "a2a", "url": "https://w", field: ""}
    with pytest.raises(ValidationError):
        Endpoint.model_validate(values)


# --- events ------------------------------------------------------------------------------------


def test_agent_event_round_trip() -> None:
    """An event's data survives a JSON round trip and rejects unknown fields."""
    event = AgentEvent(
        agent_id="weather",
        revision=42,
        status="live",
        live_instances=1,
        reason="registered",
        agent=AgentView(name="Weather", card_format="generic"),
        card={"name": "Weather"},
    )
    assert AgentEvent.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError):
        AgentEvent.model_validate({**event.model_dump(), "extra": 1})


def test_cloudevents_headers() -> None:
    """Every CloudEvents attribute header carries the cloudEvents_ prefix."""
    assert all(h.startswith("cloudEvents_") for h in CE_HEADERS)
    assert {"cloudEvents_id", "cloudEvents_type", "cloudEvents_revision"} <= set(CE_HEADERS)


# --- topology ----------------------------------------------------------------------------------


def _names(topology: Topology) -> list[str]:
    return [*topology.exchanges, *topology.queues]


def test_default_topology_names() -> None:
    """The default names are those of design section 3."""
    topology = Topology()
    assert topology.commands_exchange == "agentroster.commands"
    assert topology.commands_queue == "agentroster.commands"
    assert topology.dead_letter_queue == "agentroster.dead-letter"
    assert topology.events_exchange == "agentroster.events"
    assert topology.events_log == "agentroster.events.log"
    assert topology.commands_binding == "agent.*.*"
    assert topology.event_type("joined") == "agentroster.agent.joined"


def test_custom_prefix_names() -> None:
    """With a custom prefix, every exchange and queue name starts with that prefix."""
    topology = Topology("t-1234")
    for name in _names(topology):
        assert name.startswith("t-1234.")
        assert not name.startswith("agentroster")
    assert topology.events_log == "t-1234.events.log"
    assert topology.dead_letter_exchange == "t-1234.dead-letter"


def test_two_prefixes_share_no_name() -> None:
    """Two registries with different prefixes share no exchange or queue name."""
    assert not set(_names(Topology("a"))) & set(_names(Topology("b")))


@pytest.mark.parametrize("kind", COMMAND_KINDS)
def test_command_key_format(kind: Any) -> None:
    """A command's routing key is agent.<agent_id>.<kind>, whatever the prefix."""
    assert Topology.command_key("weather", kind) == f"agent.weather.{kind}"
    assert Topology("x").command_key("weather", kind) == f"agent.weather.{kind}"


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_event_key_format(kind: Any) -> None:
    """An event's routing key is agent.<kind>.<agent_id>."""
    assert Topology.event_key(kind, "weather") == f"agent.{kind}.weather"


def test_command_key_matches_the_commands_binding() -> None:
    """Every command key has three dot-separated words, as the agent.*.* binding needs."""
    for kind in COMMAND_KINDS:
        assert len(Topology.command_key("weather-bot", kind).split(".")) == 3


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", "\x7f", "\x85"])
def test_labels_have_no_control_characters(char: str) -> None:
    """Neither a label key nor its value may hold a control character (C0, DEL, C1)."""
    for labels in ({f"k{char}": "v"}, {"k": f"v{char}"}):
        with pytest.raises(ValidationError, match="labels"):
            Register(**COMMON, ttl_s=30, card={}, labels=labels)
    Register(**COMMON, ttl_s=30, card={}, labels={"équipe": "météo ☀ eu-west"})


def test_register_endpoints_are_at_most_64() -> None:
    """The contract bounds the list (the registry's setting may bound it lower)."""
    endpoint = {"transport": "http", "protocol": "a2a", "url": "https://w.example/"}
    Register(**COMMON, ttl_s=30, card={}, endpoints=[endpoint] * 64)
    with pytest.raises(ValidationError, match="endpoints"):
        Register(**COMMON, ttl_s=30, card={}, endpoints=[endpoint] * 65)
