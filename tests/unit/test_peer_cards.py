"""How the peers' registrations map onto agents and instances (api/peer_cards.py)."""

from __future__ import annotations

import pytest

from agentroster.api.peer_cards import (
    bounded_interval,
    effective_url,
    heartbeat_agent_id,
    heartbeat_instance_id,
    without_nulls,
)
from agentroster.contracts.ids import is_agent_id


def test_nulls_are_dropped_at_every_depth_and_nothing_else() -> None:
    card = {
        "name": "a",
        "url": None,
        "skills": [{"id": "s", "description": None, "tags": [None, "t"]}],
        "capabilities": {"streaming": False, "extendedAgentCard": None},
    }
    assert without_nulls(card) == {
        "name": "a",
        "skills": [{"id": "s", "tags": [None, "t"]}],  # null items of a list are values
        "capabilities": {"streaming": False},
    }
    assert card["url"] is None  # the input is left as it was


def test_deep_nesting_does_not_overflow() -> None:
    deep: dict[str, object] = {"x": None}
    for _ in range(100_000):
        deep = {"d": deep}
    without_nulls(deep)


@pytest.mark.parametrize(
    ("card", "url"),
    [
        ({"url": "http://a/"}, "http://a/"),
        ({"supportedInterfaces": [{"url": "http://b/"}, {"url": "http://c/"}]}, "http://b/"),
        ({"url": "", "supportedInterfaces": [{"url": "http://b/"}]}, "http://b/"),
        ({"supportedInterfaces": []}, None),
        ({"supportedInterfaces": ["http://b/"]}, None),
        ({"url": 7}, None),
        ({}, None),
    ],
)
def test_the_url_oo_a2a_registry_keys_an_agent_by(card: dict[str, object], url: str | None) -> None:
    assert effective_url(card) == url


def test_one_name_two_urls_two_agents_and_ids_are_stable() -> None:
    a = heartbeat_agent_id("Weather Bot", "http://h:1/")
    assert a == heartbeat_agent_id("Weather Bot", "http://h:1/")
    assert a != heartbeat_agent_id("Weather Bot", "http://h:2/")
    assert a.startswith("weather-bot-")
    assert heartbeat_instance_id("http://h:1/") != heartbeat_instance_id("http://h:2/")


def test_a_long_name_still_makes_a_valid_agent_id() -> None:
    agent_id = heartbeat_agent_id("x" * 60 + "-" + "y" * 60, "http://h/")
    assert is_agent_id(agent_id)
    assert len(agent_id) <= 63


def test_a_name_without_letters_or_digits_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot derive"):
        heartbeat_agent_id("!!!", "http://h/")


@pytest.mark.parametrize(("interval", "wanted"), [(1, 2), (2, 2), (60, 60), (10**9, 28_800)])
def test_the_interval_keeps_three_of_them_within_the_ttl_bounds(interval: int, wanted: int) -> None:
    """Default bounds 5 s to 24 h: a lease of three intervals is between them."""
    assert bounded_interval(interval, 5.0, 86_400.0) == wanted
