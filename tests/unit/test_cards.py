"""Card helpers: format detection, digest, stored bytes, skills and the agent view."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from a2a.compat.v0_3 import types as v03
from a2a.types import AgentCard, AgentInterface, AgentSkill
from google.protobuf.json_format import MessageToDict
from hypothesis import given
from hypothesis import strategies as st

from agentroster.contracts import (
    Endpoint,
    Skill,
    agent_view,
    card_bytes,
    card_digest,
    card_format,
)
from agentroster.contracts.cards import card_skills

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


# --- card_format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ({"name": "w", "supportedInterfaces": []}, "a2a/1.0"),
        ({"supportedInterfaces": [], "url": "https://w"}, "a2a/1.0"),
        ({"name": "w", "url": "https://w"}, "a2a/0.3"),
        ({"name": "w", "preferredTransport": "GRPC"}, "a2a/0.3"),
        ({"name": "tools", "protocol": "mcp"}, "generic"),
        ({}, "generic"),
    ],
)
def test_card_format(card: dict[str, Any], expected: str) -> None:
    """supportedInterfaces: v1.0 (even beside url); url/preferredTransport: v0.3; else generic."""
    assert card_format(card) == expected


def test_card_format_of_sdk_cards() -> None:
    """The SDK's v1.0 protobuf card is a2a/1.0, its v0.3 pydantic card is a2a/0.3."""
    v10 = MessageToDict(AgentCard(name="w", supported_interfaces=[AgentInterface(url="https://w")]))
    old = v03.AgentCard(
        name="w",
        description="d",
        url="https://w",
        version="1",
        capabilities=v03.AgentCapabilities(),
        default_input_modes=[],
        default_output_modes=[],
        skills=[],
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert card_format(v10) == "a2a/1.0"
    assert card_format(old) == "a2a/0.3"


# --- card_digest, card_bytes -------------------------------------------------------------------


def test_digest_independent_of_key_order() -> None:
    """Two cards with the same content in different key order have the same digest."""
    a = {"name": "w", "skills": [{"id": "s", "tags": ["x"]}], "meta": {"a": 1, "b": 2}}
    b = {"meta": {"b": 2, "a": 1}, "skills": [{"tags": ["x"], "id": "s"}], "name": "w"}
    assert card_digest(a) == card_digest(b)


def test_digest_differs_for_different_content() -> None:
    """Any change of content changes the digest, including list order and value types."""
    base = {"name": "w", "skills": [{"id": "a"}, {"id": "b"}], "n": 1}
    variants: list[dict[str, Any]] = [
        {"name": "W", "skills": [{"id": "a"}, {"id": "b"}], "n": 1},
        {"name": "w", "skills": [{"id": "b"}, {"id": "a"}], "n": 1},
        {"name": "w", "skills": [{"id": "a"}, {"id": "b"}], "n": "1"},
        {"name": "w", "skills": [{"id": "a"}, {"id": "b"}], "n": 1, "extra": None},
    ]
    digests = {card_digest(base)} | {card_digest(v) for v in variants}
    assert len(digests) == 1 + len(variants)


def test_digest_format() -> None:
    """The digest is `sha256:` followed by 64 hex digits."""
    digest = card_digest({"name": "w"})
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    int(digest.removeprefix("sha256:"), 16)


@given(json_objects, st.randoms(use_true_random=False))
def test_digest_independent_of_key_order_property(card: dict[str, Any], rnd: Any) -> None:
    """Shuffling the key order of any card never changes its digest."""
    items = list(card.items())
    rnd.shuffle(items)
    assert card_digest(dict(items)) == card_digest(card)


def test_card_bytes_keep_key_order() -> None:
    """The stored card is compact JSON in the key order it was given."""
    card = {"zeta": 1, "alpha": {"y": 2, "b": 3}, "mid": [1, 2]}
    assert card_bytes(card) == b'{"zeta":1,"alpha":{"y":2,"b":3},"mid":[1,2]}'


@given(json_objects)
def test_card_bytes_round_trip(card: dict[str, Any]) -> None:
    """The stored bytes decode back to the same card, with the same key order."""
    decoded = orjson.loads(card_bytes(card))
    assert decoded == card
    assert list(decoded) == list(card)


# --- card_skills -------------------------------------------------------------------------------


def test_card_skills_ignores_skills_without_string_id() -> None:
    """Skills without an id, with a non-string id, or not objects at all are ignored."""
    card = {
        "skills": [
            {"id": "forecast", "name": "Forecast", "tags": ["weather"], "examples": ["x"]},
            {"name": "no id"},
            {"id": 7, "name": "numeric id"},
            {"id": None},
            "not-a-skill",
            {"id": "alerts"},
        ]
    }
    assert card_skills(card) == [
        Skill(id="forecast", name="Forecast", tags=("weather",)),
        Skill(id="alerts"),
    ]


@pytest.mark.parametrize("skills", [None, "x", {"id": "a"}, 3])
def test_card_skills_needs_a_list(skills: Any) -> None:
    """A card whose skills is not a list has no skills."""
    assert card_skills({"skills": skills}) == []
    assert card_skills({}) == []


# --- agent_view --------------------------------------------------------------------------------


def test_agent_view_tags_are_the_sorted_union() -> None:
    """The view's tags are the sorted union of all skills' tags, without duplicates."""
    card = {
        "name": "w",
        "skills": [
            {"id": "a", "tags": ["weather", "eu"]},
            {"id": "b", "tags": ["alerts", "weather"]},
            {"id": "c"},
        ],
    }
    assert agent_view(card, None, None).tags == ["alerts", "eu", "weather"]


def test_agent_view_reads_name_description_version_format() -> None:
    """The view carries the card's name, description, version and format."""
    card = {"name": "Weather", "description": "Forecasts", "version": "2.0", "url": "https://w"}
    view = agent_view(card, None, {"team": "ops"})
    assert (view.name, view.description, view.version) == ("Weather", "Forecasts", "2.0")
    assert view.card_format == "a2a/0.3"
    assert view.labels == {"team": "ops"}


def test_agent_view_of_card_without_name() -> None:
    """A card without a string name has an empty name in the view and no labels."""
    view = agent_view({"name": 5}, None, None)
    assert view.name == ""
    assert view.labels == {}


def test_agent_view_derives_endpoints_when_none_given() -> None:
    """Without explicit endpoints, the view's endpoints derive from the card."""
    card = {"name": "w", "supportedInterfaces": [{"url": "https://w/a2a"}]}
    (endpoint,) = agent_view(card, None, None).endpoints
    assert endpoint.url == "https://w/a2a"
    assert endpoint.binding == "JSONRPC"


def test_agent_view_uses_explicit_endpoints() -> None:
    """Explicit endpoints replace the card's own, even an empty list."""
    card = {"name": "w", "supportedInterfaces": [{"url": "https://w/a2a"}]}
    explicit = [Endpoint(transport="http", protocol="mcp", url="https://w/mcp")]
    assert agent_view(card, explicit, None).endpoints == explicit
    assert agent_view(card, [], None).endpoints == []


def test_agent_view_of_sdk_v10_card() -> None:
    """A v1.0 SDK card's view has its skills, tags and endpoints."""
    card: dict[str, Any] = MessageToDict(
        AgentCard(
            name="Weather Bot",
            description="Forecasts",
            version="1.0.0",
            supported_interfaces=[AgentInterface(url="https://w/a2a", protocol_binding="GRPC")],
            skills=[
                AgentSkill(id="forecast", name="Forecast", tags=["weather", "eu"]),
                AgentSkill(id="alerts", name="Alerts", tags=["weather"]),
            ],
        )
    )
    view = agent_view(card, None, None)
    assert view.name == "Weather Bot"
    assert view.card_format == "a2a/1.0"
    assert [s.id for s in view.skills] == ["forecast", "alerts"]
    assert view.tags == ["eu", "weather"]
    assert [e.binding for e in view.endpoints] == ["GRPC"]
