"""Agent and instance identifiers: derivation, validation, uniqueness."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from agentroster.contracts import derive_agent_id, is_agent_id, new_instance_id
from agentroster.contracts.ids import AgentId, InstanceId

INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


# --- derive_agent_id ---------------------------------------------------------------------------


def test_derive_from_readable_name() -> None:
    """A card name becomes a lower-case dashed label without punctuation."""
    assert derive_agent_id("Weather Bot (EU)") == "weather-bot-eu"


def test_derive_collapses_runs_and_strips_edges() -> None:
    """Runs of non-alphanumerics become one dash; leading and trailing ones are dropped."""
    assert derive_agent_id("  --Hello,   World!!  ") == "hello-world"
    assert derive_agent_id("a_b.c/d") == "a-b-c-d"


def test_derive_keeps_digits() -> None:
    """Digits are kept as they are."""
    assert derive_agent_id("Agent 007") == "agent-007"


def test_derive_transliterates_accents() -> None:
    """Accented letters lose their accents (NFKD, then ASCII)."""
    assert derive_agent_id("Café Über Straße") == "cafe-uber-strae"
    assert derive_agent_id("\uff37\uff45\uff41\uff54\uff48\uff45\uff52") == "weather"  # fullwidth


def test_derive_drops_non_latin_letters() -> None:
    """Characters without an ASCII form are dropped, the rest is kept."""
    assert derive_agent_id("天气 Bot") == "bot"


def test_derive_caps_length_at_63() -> None:
    """A long name is cut to 63 characters."""
    derived = derive_agent_id("a" * 100)
    assert derived == "a" * 63


def test_derive_cut_never_ends_with_dash() -> None:
    """When the cut at 63 falls on a dash, the trailing dash is removed."""
    name = "a" * 62 + " bcd"  # the 63rd character is the separator
    derived = derive_agent_id(name)
    assert derived == "a" * 62
    assert is_agent_id(derived)


@pytest.mark.parametrize("name", ["", "   ", "---", "()!", "天气", "🙂"])
def test_derive_raises_when_nothing_is_left(name: str) -> None:
    """A name with no usable character raises ValueError."""
    with pytest.raises(ValueError, match="agent_id"):
        derive_agent_id(name)


@given(st.text(max_size=200))
def test_derived_id_is_always_valid(name: str) -> None:
    """Whatever the name, a derived id (when one is derived) is a valid agent id."""
    try:
        derived = derive_agent_id(name)
    except ValueError:
        return
    assert is_agent_id(derived)
    assert 1 <= len(derived) <= 63
    TypeAdapter(AgentId).validate_python(derived)


# --- is_agent_id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["a", "0", "weather", "weather-bot-eu", "a1-b2", "x" * 63, "a" + "-" * 61 + "b"]
)
def test_valid_agent_ids(value: str) -> None:
    """DNS labels of 1-63 lower-case alphanumerics and inner dashes are valid."""
    assert is_agent_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Weather",
        "WEATHER",
        "-weather",
        "weather-",
        "-",
        "x" * 64,
        "weather.bot",
        "weather_bot",
        "weather bot",
        "wéather",
        "a*",
        "a#",
    ],
)
def test_invalid_agent_ids(value: str) -> None:
    """Upper case, edge dashes, over 63 chars, dots and other characters are invalid."""
    assert not is_agent_id(value)


@pytest.mark.parametrize("value", ["weather", "x" * 63, "Weather", "-a", "x" * 64, "a.b"])
def test_is_agent_id_agrees_with_the_pydantic_type(value: str) -> None:
    """`is_agent_id` and the `AgentId` type used in commands accept the same strings."""
    adapter = TypeAdapter(AgentId)
    try:
        adapter.validate_python(value)
        accepted = True
    except ValidationError:
        accepted = False
    assert is_agent_id(value) is accepted


def test_agent_id_with_trailing_newline_is_invalid() -> None:
    """An id followed by a newline is invalid (it would break routing keys and Redis keys)."""
    assert not is_agent_id("weather\n")


# --- new_instance_id ---------------------------------------------------------------------------


def test_new_instance_ids_are_unique() -> None:
    """Every call gives a new instance id."""
    ids = {new_instance_id() for _ in range(1000)}
    assert len(ids) == 1000


def test_new_instance_id_matches_the_instance_id_pattern() -> None:
    """A new instance id satisfies the InstanceId pattern commands require."""
    instance_id = new_instance_id()
    assert INSTANCE_ID_RE.fullmatch(instance_id)
    TypeAdapter(InstanceId).validate_python(instance_id)


def test_new_instance_id_uses_hostname_and_random_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    """The id is the HOSTNAME (pod name) plus a dash and 8 hex digits."""
    monkeypatch.setenv("HOSTNAME", "weather-7d9f")
    assert re.fullmatch(r"weather-7d9f-[0-9a-f]{8}", new_instance_id())


def test_new_instance_id_sanitises_odd_hostnames(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostname with spaces, slashes or a huge length still yields a valid instance id."""
    monkeypatch.setenv("HOSTNAME", "my host/ünïcode" + "x" * 300)
    instance_id = new_instance_id()
    assert INSTANCE_ID_RE.fullmatch(instance_id)
    assert instance_id.startswith("my-host--n-code")
