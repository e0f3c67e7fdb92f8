"""The identity `CommandPublisher` puts on every command (nothing connects here)."""

from __future__ import annotations

import pytest

from agentroster.client import CommandPublisher


@pytest.mark.parametrize(
    ("url", "given", "sent"),
    [
        ("amqp://weather:pw@broker:5672/", None, "weather"),  # the URL's user, by default
        ("amqp://weather%2Beu:pw@broker/", None, "weather+eu"),  # percent-decoded
        ("amqp://broker/", None, "guest"),  # the user aio-pika logs in as
        ("amqp://weather:pw@broker/", "", None),  # opted out
        ("amqp://weather:pw@broker/", "other", "other"),  # the caller's (the broker checks it)
        ("amqps://broker/?auth=external", None, None),  # the certificate names the user
        ("amqps://broker/?auth=external", "cn-weather", "cn-weather"),
    ],
)
def test_every_command_carries_the_connections_user_by_default(
    url: str, given: str | None, sent: str | None
) -> None:
    assert CommandPublisher(url, user_id=given).user_id == sent
