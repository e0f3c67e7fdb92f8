"""Broker users made by `agentroster broker ...` for the tests (through the management API)."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from typer.testing import CliRunner

from agentroster.cli import app
from tests.services import Services

MANAGEMENT_URL = os.environ.get("AGENTROSTER_TEST_MANAGEMENT_URL", "http://127.0.0.1:15672")


@dataclass(frozen=True)
class BrokerUser:
    """A broker user the CLI made, and the AMQP URL it connects with."""

    name: str
    url: str


@dataclass
class Admin:
    """Runs `agentroster broker ...` against the test broker's management API."""

    services: Services
    made: list[str]

    @property
    def credentials(self) -> list[str]:
        parts = urlsplit(self.services.broker_url)
        return [
            "--management-url",
            MANAGEMENT_URL,
            "--admin-user",
            unquote(parts.username or "guest"),
            "--admin-password",
            unquote(parts.password or "guest"),
        ]

    @property
    def vhost(self) -> str:
        return unquote(urlsplit(self.services.broker_url).path[1:]) or "/"

    def run(self, *args: str) -> str:
        """Run one broker command; its output (it must succeed)."""
        result = CliRunner().invoke(app, ["broker", *args, *self.credentials])
        assert result.exit_code == 0, result.output
        return result.output

    def grant(self, command: str, role: str, prefix: str, *options: str) -> BrokerUser:
        """A new user of `role` for registry `prefix`, its generated password read once."""
        name = f"{prefix}-{role}-{uuid.uuid4().hex[:6]}"
        self.made.append(name)
        output = self.run(command, name, "--prefix", prefix, "--vhost", self.vhost, *options)
        [password] = re.findall(r"^password \(shown once, store it now\): (\S+)$", output, re.M)
        return BrokerUser(name, url_as(self.services.broker_url, name, password))


def url_as(broker_url: str, user: str, password: str) -> str:
    """`broker_url` with another user and password."""
    parts = urlsplit(broker_url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port or 5672}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
