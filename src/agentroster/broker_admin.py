"""`agentroster broker ...`: broker users with least privilege, through RabbitMQ's management API.

Operators and Kubernetes Jobs reach RabbitMQ over its management HTTP API (the
`rabbitmq_management` plugin), so these commands need no `rabbitmqctl` and no shell on the
broker's host. Each grant sets exactly the permissions of its role (`agentroster.permissions`)
in one vhost, replacing the user's vhost and topic permissions there. A new user gets a
generated password, printed once; an existing user keeps its password unless one is given.
Secrets are never logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer

from agentroster.contracts import Topology
from agentroster.contracts.topology import DEFAULT_PREFIX
from agentroster.permissions import (
    Grant,
    agent_grant,
    registry_grant,
    subscriber_grant,
)

#: A call to the management API that takes longer than this fails.
HTTP_TIMEOUT_S = 10.0


class ManagementError(RuntimeError):
    """The management API refused a request or cannot be reached; the message says which."""


class ManagementClient:
    """The few calls of RabbitMQ's management HTTP API that manage users and permissions."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ManagementError(
                f"cannot reach the management API at {self._http.base_url} ({exc}); is the "
                "rabbitmq_management plugin enabled (`rabbitmq-plugins enable "
                "rabbitmq_management`)?"
            ) from None
        if response.status_code in (401, 403):
            raise ManagementError(
                f"the management API refused the admin user ({response.status_code}): it needs "
                "the administrator tag (set --admin-user and --admin-password)"
            )
        if response.status_code >= 400 and response.status_code != 404:
            raise ManagementError(
                f"{method} {path}: {response.status_code} {response.text.strip()[:300]}"
            )
        return response

    def user_tags(self, user: str) -> list[str] | None:
        """The user's tags, or None when no such user exists."""
        response = self._call("GET", f"/api/users/{_q(user)}")
        if response.status_code == 404:
            return None
        tags = response.json().get("tags", [])
        return tags.split(",") if isinstance(tags, str) else list(tags)

    def put_user(self, user: str, password: str) -> None:
        """Create the user, or set its password; no tags (no management access)."""
        body = {"password": password, "tags": ""}
        self._ok(self._call("PUT", f"/api/users/{_q(user)}", json=body))

    def delete_user(self, user: str) -> bool:
        """Delete the user (and with it its permissions); False when there was none."""
        return self._call("DELETE", f"/api/users/{_q(user)}").status_code != 404

    def set_grant(self, vhost: str, user: str, grant: Grant) -> None:
        """Set the grant's vhost permissions and replace every topic permission in `vhost`."""
        perms = grant.permissions
        body = {"configure": perms.configure, "write": perms.write, "read": perms.read}
        self._ok(self._call("PUT", f"/api/permissions/{_q(vhost)}/{_q(user)}", json=body))
        # 404: none to delete
        self._call("DELETE", f"/api/topic-permissions/{_q(vhost)}/{_q(user)}")
        for topic in grant.topic_permissions:
            body = {"exchange": topic.exchange, "write": topic.write, "read": topic.read}
            self._ok(self._call("PUT", f"/api/topic-permissions/{_q(vhost)}/{_q(user)}", json=body))

    def close_connections(self, user: str, reason: str) -> int:
        """Close every connection of `user` (RabbitMQ caches rights per channel); how many."""
        response = self._call("GET", "/api/connections", params={"columns": "name,user"})
        names = [c["name"] for c in response.json() if c.get("user") == user]
        for name in names:
            self._call("DELETE", f"/api/connections/{_q(name)}", headers={"X-Reason": reason})
        return len(names)

    @staticmethod
    def _ok(response: httpx.Response) -> None:
        if response.status_code == 404:
            raise ManagementError(f"{response.request.url.path}: not found (no such vhost?)")


def _q(segment: str) -> str:
    """One path segment of the management API (the default vhost `/` is `%2F`)."""
    return quote(segment, safe="")


def management_client(url: str, admin_user: str, admin_password: str) -> ManagementClient:
    """A client of the management API at `url`, authenticated as the admin user."""
    http = httpx.Client(base_url=url, auth=(admin_user, admin_password), timeout=HTTP_TIMEOUT_S)
    return ManagementClient(http)


# --- the commands -------------------------------------------------------------------------------

broker_app = typer.Typer(
    help="Broker users with least privilege, through RabbitMQ's management HTTP API.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
)

UserArgument = Annotated[str, typer.Argument(help="The broker user name.", show_default=False)]
VhostOption = Annotated[str, typer.Option(help="The vhost the registry's names live in.")]
PrefixOption = Annotated[
    str, typer.Option(envvar="AGENTROSTER_PREFIX", help="The registry's prefix.")
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        envvar="AGENTROSTER_BROKER_USER_PASSWORD",
        help="The user's password (default: generated for a new user and printed once; an "
        "existing user keeps its own).",
        show_default=False,
    ),
]
ManagementUrlOption = Annotated[
    str, typer.Option(envvar="AGENTROSTER_MANAGEMENT_URL", help="RabbitMQ's management API.")
]
AdminUserOption = Annotated[
    str,
    typer.Option(envvar="AGENTROSTER_MANAGEMENT_USER", help="A management user (administrator)."),
]
AdminPasswordOption = Annotated[
    str,
    typer.Option(
        envvar="AGENTROSTER_MANAGEMENT_PASSWORD",
        help="Its password (default: guest).",
        show_default=False,
    ),
]

DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"


def _run(action: Callable[[], list[str]]) -> None:
    """Run one command's calls, print what it did; a refusal is `error: ...` and exit 1."""
    try:
        lines = action()
    except (ManagementError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


def _run_grant(
    make_role: Callable[[], Grant],
    user: str,
    *,
    vhost: str,
    password: str | None,
    management_url: str,
    admin_user: str,
    admin_password: str,
) -> None:
    """Grant `user` the role `make_role` builds and print what was done (`_run`)."""

    def action() -> list[str]:
        role = make_role()  # inside: a bad glob is an error line, not a traceback
        client = management_client(management_url, admin_user, admin_password)
        return grant(client, user, role, vhost=vhost, password=password, admin_user=admin_user)

    _run(action)


def grant(
    client: ManagementClient,
    user: str,
    role: Grant,
    *,
    vhost: str,
    password: str | None,
    admin_user: str,
) -> list[str]:
    """Create or update `user` with exactly `role`'s permissions; the lines to print."""
    if user == admin_user:
        raise ValueError(f"{user!r} is the admin user these commands log in as: use another")
    tags = client.user_tags(user)
    generated = password is None and tags is None
    if generated:
        password = secrets.token_urlsafe(24)
    lines = []
    if password is not None:
        client.put_user(user, password)
        lines.append(f"user {user}: {'created' if tags is None else 'password set'}")
    else:
        lines.append(f"user {user}: exists, password unchanged")
    if tags:
        lines.append(f"  tags removed: {', '.join(tags)} (no management access)")
    client.set_grant(vhost, user, role)
    perms = role.permissions
    lines += [
        f"{role.role} permissions in vhost {vhost}:",
        f"  configure  {perms.configure}",
        f"  write      {perms.write}",
        f"  read       {perms.read}",
    ]
    if role.topic_permissions:
        for topic in role.topic_permissions:
            lines += [
                f"topic permissions on exchange {topic.exchange}:",
                f"  write      {topic.write}",
                f"  read       {topic.read}",
            ]
    else:
        lines.append("topic permissions: none")
    if tags is not None:  # RabbitMQ caches rights per channel: reconnecting applies these
        closed = client.close_connections(user, "agentroster: permissions changed")
        lines.append(f"connections closed: {closed} (clients reconnect with these rights)")
    if generated:
        lines.append(f"password (shown once, store it now): {password}")
    return lines


@broker_app.command("grant-agent")
def grant_agent(
    user: UserArgument,
    agents: Annotated[
        list[str],
        typer.Option(
            "--agents",
            help="Agent ids it may speak for, a glob ('weather-*'); repeat for more.",
            show_default=False,
        ),
    ],
    subscribe: Annotated[
        bool, typer.Option(help="Also read the events log stream (replay and live events).")
    ] = False,
    vhost: VhostOption = "/",
    prefix: PrefixOption = DEFAULT_PREFIX,
    password: PasswordOption = None,
    management_url: ManagementUrlOption = DEFAULT_MANAGEMENT_URL,
    admin_user: AdminUserOption = "guest",
    admin_password: AdminPasswordOption = "guest",
) -> None:
    """Create or update an agent's broker user: it may publish only its agents' commands.

    No configure; write on the commands exchange only, narrowed by a topic permission to
    `agent.<id>.<register|heartbeat|deregister>` for ids matching --agents; no read on any
    exchange. With --subscribe it may also consume the events log stream.
    """

    _run_grant(
        lambda: agent_grant(Topology(prefix), agents, subscribe=subscribe),
        user,
        vhost=vhost,
        password=password,
        management_url=management_url,
        admin_user=admin_user,
        admin_password=admin_password,
    )


@broker_app.command("grant-subscriber")
def grant_subscriber(
    user: UserArgument,
    vhost: VhostOption = "/",
    prefix: PrefixOption = DEFAULT_PREFIX,
    password: PasswordOption = None,
    management_url: ManagementUrlOption = DEFAULT_MANAGEMENT_URL,
    admin_user: AdminUserOption = "guest",
    admin_password: AdminPasswordOption = "guest",
) -> None:
    """Create or update a subscriber's broker user: queues of its own on the events exchange.

    It declares, binds and consumes server-named queues, binds them to the events exchange and
    consumes the events log stream; it writes no registry name (no commands, no events).
    """

    _run_grant(
        lambda: subscriber_grant(Topology(prefix)),
        user,
        vhost=vhost,
        password=password,
        management_url=management_url,
        admin_user=admin_user,
        admin_password=admin_password,
    )


@broker_app.command("grant-registry")
def grant_registry(
    user: UserArgument,
    vhost: VhostOption = "/",
    prefix: PrefixOption = DEFAULT_PREFIX,
    password: PasswordOption = None,
    management_url: ManagementUrlOption = DEFAULT_MANAGEMENT_URL,
    admin_user: AdminUserOption = "guest",
    admin_password: AdminPasswordOption = "guest",
) -> None:
    """Create or update the registry's broker user (worker and API): its own names only.

    Configure and write on the registry's exchanges and queues, read on the commands queue and
    the exchanges its queues are bound to. Put it in AGENTROSTER_BROKER_URL.
    """

    _run_grant(
        lambda: registry_grant(Topology(prefix)),
        user,
        vhost=vhost,
        password=password,
        management_url=management_url,
        admin_user=admin_user,
        admin_password=admin_password,
    )


@broker_app.command()
def revoke(
    user: UserArgument,
    management_url: ManagementUrlOption = DEFAULT_MANAGEMENT_URL,
    admin_user: AdminUserOption = "guest",
    admin_password: AdminPasswordOption = "guest",
) -> None:
    """Delete a broker user (its permissions go with it) and close its open connections."""

    def action() -> list[str]:
        if user == admin_user:
            raise ValueError(f"{user!r} is the admin user these commands log in as")
        client = management_client(management_url, admin_user, admin_password)
        if not client.delete_user(user):
            return [f"user {user}: no such user, nothing to revoke"]
        closed = client.close_connections(user, f"agentroster: user {user} revoked")
        return [f"user {user}: deleted, with its permissions", f"connections closed: {closed}"]

    _run(action)
