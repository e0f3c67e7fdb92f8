"""The least-privilege grants: glob translation and the exact regexes of each role."""

from __future__ import annotations

import re

import pytest

from agentroster.contracts import Topology
from agentroster.contracts.ids import broker_user
from agentroster.permissions import (
    NOTHING,
    agent_grant,
    command_keys_regex,
    glob_regex,
    registry_grant,
    subscriber_grant,
)

NAMES = Topology("reg")
#: Every exchange and queue name of the registry (the commands and dead-letter queues are
#: named as their exchanges).
REGISTRY_NAMES = ["reg.commands", "reg.dead-letter", "reg.events", "reg.events.log"]


def allows(regex: str, value: str) -> bool:
    return re.search(regex, value) is not None


@pytest.mark.parametrize(
    ("globs", "allowed", "refused"),
    [
        (
            ["weather-*"],
            ["weather-1", "weather-eu-west", "weather-x"],
            ["weather-", "weather", "billing-1", "xweather-1", "weather-1-", "weather-A"],
        ),
        (["rain"], ["rain"], ["rain-1", "rai", "rainy"]),
        (["*"], ["a", "billing-1", "x-y-z"], ["-a", "a-", ""]),
        (["a?c"], ["abc", "a-c", "a1c"], ["ac", "abbc"]),
        (["weather-*", "rain"], ["rain", "weather-2"], ["snow"]),
    ],
)
def test_a_glob_allows_exactly_the_matching_valid_agent_ids(
    globs: list[str], allowed: list[str], refused: list[str]
) -> None:
    """Each kind of every matching valid id is allowed; other ids and invalid ids are not."""
    regex = command_keys_regex(globs)
    for agent_id in allowed:
        for kind in ("register", "heartbeat", "deregister"):
            assert allows(regex, f"agent.{agent_id}.{kind}"), (agent_id, kind)
    for agent_id in refused:
        assert not allows(regex, f"agent.{agent_id}.register"), agent_id


@pytest.mark.parametrize(
    "key",
    [
        "agent.weather-1.other",
        "agent.weather-1.register.x",
        "agent.weather-1.billing-1.register",  # `*` never reaches into another word
        "x.agent.weather-1.register",
        "agent.weather-1.registerx",
        "agent.weather-1",
        "agent.joined.weather-1",  # an event's key, not a command's
    ],
)
def test_a_glob_never_allows_a_key_of_another_shape(key: str) -> None:
    """Only `agent.<id>.<register|heartbeat|deregister>`, with the id one word."""
    assert not allows(command_keys_regex(["weather-*"]), key)


@pytest.mark.parametrize(
    "glob", ["Weather", "weather.*", "a b", "(a|b)", "x{1}", "a\\d", "", "-a", "a-"]
)
def test_a_glob_with_other_characters_or_matching_no_valid_id_is_refused(glob: str) -> None:
    """Regex metacharacters, dots and impossible ids are errors, never passed through."""
    with pytest.raises(ValueError, match="agent id"):
        glob_regex([glob])


def test_no_glob_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        glob_regex([])


def test_the_agent_grant_is_write_on_the_commands_exchange_only() -> None:
    """No configure, no read; write matches one name; the topic permission narrows the keys."""
    grant = agent_grant(NAMES, ["weather-*"])
    assert grant.permissions.configure == NOTHING
    assert grant.permissions.read == NOTHING
    assert grant.permissions.write == r"^reg\.commands$"
    [topic] = grant.topic_permissions
    assert topic.exchange == "reg.commands"
    assert topic.write == (
        r"^agent\.(?=[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)(?:weather-[a-z0-9-]*)"
        r"\.(?:register|heartbeat|deregister)$"
    )
    assert topic.read == NOTHING
    assert "{" not in topic.write  # RabbitMQ expands {username} and {vhost} in topic regexes


def test_a_subscribing_agent_reads_the_events_stream_and_no_exchange() -> None:
    """Write on the commands exchange is write on the commands queue: no exchange to bind it to."""
    grant = agent_grant(NAMES, ["weather-*"], subscribe=True)
    assert grant.permissions.read == r"^reg\.events\.log$"
    for name in REGISTRY_NAMES:
        readable = allows(grant.permissions.read, name)
        assert readable == (name == "reg.events.log"), name
    assert grant.permissions.configure == NOTHING


def test_the_subscriber_writes_and_configures_no_registry_name() -> None:
    """It cannot publish commands or events, nor bind or delete the registry's queues."""
    perms = subscriber_grant(NAMES).permissions
    for name in REGISTRY_NAMES:
        assert not allows(perms.configure, name), name
        assert not allows(perms.write, name), name
    assert not allows(perms.read, "reg.commands")  # cannot consume the commands queue
    assert not allows(perms.read, "reg.dead-letter")
    assert allows(perms.read, "reg.events")
    assert allows(perms.read, "reg.events.log")
    for regex in (perms.configure, perms.write, perms.read):
        assert allows(regex, "amq.gen-Xy3_abc")  # its server-named queues
        assert not allows(regex, "amq.topic")  # no built-in exchange


def test_the_registry_grant_covers_its_own_names_only() -> None:
    """Configure/write on its four names, read on what it consumes and binds from."""
    perms = registry_grant(NAMES).permissions
    for name in REGISTRY_NAMES:
        assert allows(perms.configure, name), name
        assert allows(perms.write, name), name
    assert [n for n in REGISTRY_NAMES if allows(perms.read, n)] == [
        "reg.commands",
        "reg.dead-letter",
        "reg.events",
    ]
    for other in ("other.commands", "reg.commandsx", "xreg.events", "reg-x.events"):
        for regex in (perms.configure, perms.write, perms.read):
            assert not allows(regex, other), (regex, other)
    # the default exchange: written only (replies to the write gateway's direct reply-to)
    assert allows(perms.write, "amq.default")
    assert not allows(perms.configure, "amq.default")
    assert not allows(perms.read, "amq.default")
    assert not allows(perms.write, "amq.topic")
    assert registry_grant(NAMES).topic_permissions == ()


def test_an_invalid_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        registry_grant(Topology("a.*"))


@pytest.mark.parametrize(
    ("url", "user"),
    [
        ("amqp://agent-1:pw@broker:5672/", "agent-1"),
        ("amqps://weather%40eu:pw@broker/vh", "weather@eu"),
        ("amqp://broker:5672/", "guest"),
    ],
)
def test_the_broker_user_is_the_urls_user_name(url: str, user: str) -> None:
    """The user_id a client sets is the name it authenticates as (aio-pika: guest by default)."""
    assert broker_user(url) == user
