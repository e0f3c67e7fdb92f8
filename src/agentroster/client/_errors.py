"""Errors the broker gives an agent, named so that the fix is obvious.

    Exception
     ├── CommandRefused (PermissionError)   the broker refused a command: a missing permission,
     │                                      or a `user_id` that is not the connection's user
     └── RegistryNotDeclared (LookupError)  the commands exchange does not exist: no registry
                                            with this prefix has started on this broker (vhost)

`DiscoveryError` (HTTP) lives beside the discovery client.
"""

from __future__ import annotations


class CommandRefused(PermissionError):
    """The broker refused to take a command; `permission` says which right is missing.

    `permission` is `"topic write"` (the user may not publish this routing key: its topic
    permission on the commands exchange does not cover the agent id), `"write"` (no write
    permission on the exchange at all) or `"user_id"` (the message's `user_id` is not the
    connection's user name; RabbitMQ accepts only that one). `detail` is the broker's reply.
    """

    def __init__(
        self, *, permission: str, routing_key: str, exchange: str, user: str, detail: str
    ) -> None:
        self.permission = permission
        self.routing_key = routing_key
        self.exchange = exchange
        self.user = user
        self.detail = detail
        super().__init__(
            f"the broker refused {routing_key!r} on exchange {exchange!r} for user {user!r}: "
            f"missing {permission} permission ({detail}); "
            + (
                "publish with user_id equal to the broker user name"
                if permission == "user_id"
                else "an operator grants it with `agentroster broker grant-agent`"
            )
        )


class RegistryNotDeclared(LookupError):
    """The commands exchange is missing: the registry has not declared it (yet).

    An agent never declares it (that would take *configure* permission): the registry's worker
    does when it starts. Start the registry, or check the prefix and the broker's vhost.
    """

    def __init__(self, exchange: str, detail: str) -> None:
        self.exchange = exchange
        self.detail = detail
        super().__init__(
            f"the commands exchange {exchange!r} does not exist: the registry has not declared "
            f"it yet (is a worker with this prefix running on this broker and vhost?) ({detail})"
        )
