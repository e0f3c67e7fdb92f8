"""`agentroster broker ...` against a fake management API (httpx.MockTransport)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from agentroster import broker_admin
from agentroster.broker_admin import ManagementClient
from agentroster.cli import app

runner = CliRunner()


@dataclass
class FakeManagement:
    """The management API's users, permissions, topic permissions and connections."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    permissions: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    topic: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    connections: list[dict[str, str]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    reachable: bool = True

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.reachable:
            raise httpx.ConnectError("connection refused", request=request)
        if request.headers.get("authorization") != httpx.BasicAuth("guest", "guest")._auth_header:
            return httpx.Response(401, json={"error": "not_authorised"})
        parts = request.url.raw_path.decode().split("?")[0].split("/")[2:]  # after /api/
        body: Any = json.loads(request.content) if request.content else None
        match request.method, parts:
            case "GET", ["users", user]:
                found = self.users.get(_unq(user))
                return httpx.Response(404) if found is None else httpx.Response(200, json=found)
            case "PUT", ["users", user]:
                created = _unq(user) not in self.users
                self.users[_unq(user)] = {"name": _unq(user), "tags": body["tags"]}
                return httpx.Response(201 if created else 204)
            case "DELETE", ["users", user]:
                return httpx.Response(204 if self.users.pop(_unq(user), None) else 404)
            case "PUT", ["permissions", vhost, user]:
                self.permissions[_unq(vhost), _unq(user)] = body
                return httpx.Response(201)
            case "DELETE", ["topic-permissions", vhost, user]:
                gone = self.topic.pop((_unq(vhost), _unq(user)), None)
                return httpx.Response(204 if gone else 404)
            case "PUT", ["topic-permissions", vhost, user]:
                self.topic.setdefault((_unq(vhost), _unq(user)), []).append(body)
                return httpx.Response(201)
            case "GET", ["connections"]:
                return httpx.Response(200, json=self.connections)
            case "DELETE", ["connections", name]:
                self.connections = [c for c in self.connections if c["name"] != _unq(name)]
                return httpx.Response(204)
        return httpx.Response(405)


def _unq(segment: str) -> str:
    return httpx.URL("/" + segment).path[1:]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    api = FakeManagement()

    def client(url: str, admin_user: str, admin_password: str) -> ManagementClient:
        return ManagementClient(
            httpx.Client(
                base_url=url,
                auth=(admin_user, admin_password),
                transport=httpx.MockTransport(api.handle),
            )
        )

    monkeypatch.setattr(broker_admin, "management_client", client)
    return api


def test_grant_agent_creates_the_user_with_exactly_the_agent_permissions(
    fake: FakeManagement,
) -> None:
    """A new user, a generated password printed once, the regexes printed as set."""
    result = runner.invoke(app, ["broker", "grant-agent", "weather", "--agents", "weather-*"])
    assert result.exit_code == 0, result.output
    assert fake.users["weather"]["tags"] == ""
    assert fake.permissions["/", "weather"] == {
        "configure": "^$",
        "write": r"^agentroster\.commands$",
        "read": "^$",
    }
    [topic] = fake.topic["/", "weather"]
    assert topic["exchange"] == "agentroster.commands"
    assert topic["write"].startswith(r"^agent\.")
    assert "weather-[a-z0-9-]*" in topic["write"]
    lines = result.output.splitlines()
    assert lines[0] == "user weather: created"
    assert r"  write      ^agentroster\.commands$" in lines
    [password_line] = [line for line in lines if line.startswith("password")]
    password = password_line.rsplit(" ", 1)[1]
    assert len(password) >= 24
    assert result.output.count(password) == 1  # shown once
    # the vhost travels as one path segment
    assert any(r.url.raw_path.endswith(b"/api/permissions/%2F/weather") for r in fake.requests)


def test_a_given_password_is_set_and_not_printed(fake: FakeManagement) -> None:
    result = runner.invoke(
        app,
        ["broker", "grant-registry", "registry", "--password", "s3cret-value", "--prefix", "reg"],
    )
    assert result.exit_code == 0, result.output
    assert "s3cret-value" not in result.output
    assert "password" not in result.output.split("\n", 1)[1]
    read = fake.permissions["/", "registry"]["read"]
    assert read == r"^(?:reg\.commands|reg\.dead-letter|reg\.events)$"
    assert "topic permissions: none" in result.output


def test_updating_an_existing_user_replaces_its_rights_and_keeps_its_password(
    fake: FakeManagement,
) -> None:
    """Old topic permissions go; the password is untouched; its connections reconnect."""
    fake.users["weather"] = {"name": "weather", "tags": "management"}
    fake.topic["/", "weather"] = [{"exchange": "x", "write": ".*", "read": ".*"}]
    fake.connections = [
        {"name": "c1", "user": "weather"},
        {"name": "c2", "user": "someone-else"},
    ]
    result = runner.invoke(
        app, ["broker", "grant-agent", "weather", "--agents", "rain", "--subscribe"]
    )
    assert result.exit_code == 0, result.output
    assert not any(r.method == "PUT" and r.url.path == "/api/users/weather" for r in fake.requests)
    assert [t["exchange"] for t in fake.topic["/", "weather"]] == ["agentroster.commands"]
    assert fake.permissions["/", "weather"]["read"] == r"^agentroster\.events\.log$"
    assert fake.connections == [{"name": "c2", "user": "someone-else"}]
    assert "user weather: exists, password unchanged" in result.output
    assert "tags removed: management" in result.output
    assert "connections closed: 1" in result.output
    assert "password (shown once" not in result.output


def test_grant_subscriber_sets_own_queue_rights(fake: FakeManagement) -> None:
    result = runner.invoke(app, ["broker", "grant-subscriber", "watcher", "--vhost", "prod"])
    assert result.exit_code == 0, result.output
    assert fake.permissions["prod", "watcher"]["configure"] == r"^amq\.gen-.*$"
    assert "watcher" not in {u for _, u in fake.topic}


def test_revoke_deletes_the_user_and_closes_its_connections(fake: FakeManagement) -> None:
    fake.users["weather"] = {"name": "weather", "tags": ""}
    fake.connections = [{"name": "127.0.0.1:5 -> 127.0.0.1:5672", "user": "weather"}]
    result = runner.invoke(app, ["broker", "revoke", "weather"])
    assert result.exit_code == 0, result.output
    assert "weather" not in fake.users
    assert fake.connections == []
    assert result.output.splitlines() == [
        "user weather: deleted, with its permissions",
        "connections closed: 1",
    ]
    again = runner.invoke(app, ["broker", "revoke", "weather"])
    assert again.output.strip() == "user weather: no such user, nothing to revoke"


def test_a_bad_glob_is_an_error_before_any_call(fake: FakeManagement) -> None:
    result = runner.invoke(app, ["broker", "grant-agent", "x", "--agents", "weather.*"])
    assert result.exit_code == 1
    assert "is not an agent id pattern" in result.output
    assert fake.requests == []


def test_the_admin_user_is_never_granted_a_role(fake: FakeManagement) -> None:
    result = runner.invoke(app, ["broker", "grant-agent", "guest", "--agents", "*"])
    assert result.exit_code == 1
    assert "admin user" in result.output


def test_a_refused_admin_is_named(fake: FakeManagement) -> None:
    result = runner.invoke(
        app, ["broker", "revoke", "weather", "--admin-password", "wrong-password"]
    )
    assert result.exit_code == 1
    assert "administrator tag" in result.output
    assert "wrong-password" not in result.output


def test_an_unreachable_management_api_says_what_to_enable(fake: FakeManagement) -> None:
    fake.reachable = False
    result = runner.invoke(app, ["broker", "grant-registry", "registry"])
    assert result.exit_code == 1
    assert "rabbitmq_management" in result.output
