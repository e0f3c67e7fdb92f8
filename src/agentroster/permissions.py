"""The least privilege of each broker role, as RabbitMQ permission regexes (invariant 6).

RabbitMQ checks three vhost permissions against resource *names*, exchanges and queues alike:
*configure* (declare, delete), *write* (publish to an exchange; be the destination of a
binding) and *read* (consume from a queue; be the source of a binding). Topic permissions
narrow *write* on a topic exchange to routing keys (and *read* to binding keys).

The commands exchange and the commands queue share one name (`<prefix>.commands`), so *write*
on the exchange is also *write* on the queue, which lets a user bind that queue to any exchange
it may *read*. Hence no role that publishes commands gets *read* on any exchange: an agent that
follows events reads the `<prefix>.events.log` stream (a queue, not an exchange). A subscriber
that binds queues of its own to the events exchange is a role of its own, without *write* on
any registry name.

    role                configure         write               read
    agent               -                 commands exchange   - (--subscribe: events stream)
    subscriber          own queues        own queues          own queues, events, events stream
    registry            registry names    registry names,     commands, dead-letter, events
                                          amq.default

The registry's *write* on `amq.default` (the default exchange, as RabbitMQ names it in
permission checks) is for its replies to the API's write gateway, which go to the gateway's
direct reply-to name (`amq.rabbitmq.reply-to.*`) through the default exchange. RabbitMQ cannot
narrow it further (topic permissions apply to topic exchanges only), so the registry's user
could publish to any queue by name; the worker only ever publishes there to direct reply-to
names, for commands of gateway users.

Every regex is anchored; names come from `Topology`, agent ids from shell-style globs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agentroster.contracts import COMMAND_KINDS, Topology
from agentroster.contracts.ids import is_agent_id

#: The default exchange ("") as RabbitMQ names it when it checks a permission.
DEFAULT_EXCHANGE = "amq.default"
#: Matches no resource name (RabbitMQ's idiom for "no permission").
NOTHING = "^$"
#: Names of queues the server generated (`queue.declare` with an empty name): RabbitMQ refuses
#: a client-chosen name beginning with `amq.`, and no exchange may be declared with it.
SERVER_NAMED = r"amq\.gen-.*"
#: One agent id, as `AGENT_ID_PATTERN` without its length bound (braces would meet RabbitMQ's
#: `{username}` expansion in topic permissions; the registry checks the length itself).
_AGENT_ID = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
#: A glob is made of agent-id characters, `*` (any run of them) and `?` (one of them).
_GLOB = re.compile(r"^[a-z0-9*?-]{1,63}$")


@dataclass(frozen=True, slots=True)
class VhostPermissions:
    """The configure, write and read regexes of one user in one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class TopicPermission:
    """Routing keys a user may publish (write) and bind (read) on one topic exchange."""

    exchange: str
    write: str
    read: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Everything one role gets: vhost permissions and topic permissions (replacing any)."""

    role: str
    permissions: VhostPermissions
    topic_permissions: tuple[TopicPermission, ...] = ()


def glob_regex(globs: list[str] | tuple[str, ...]) -> str:
    """The agent-id part of a routing key matching any of `globs` (unanchored, no dots).

    `*` matches any run of agent-id characters (never a dot: it cannot reach into another
    routing-key word), `?` one of them; everything else is literal. Raises `ValueError` for a
    glob with other characters or one no valid agent id can match (e.g. `-x`, `x-`).
    """
    if not globs:
        raise ValueError("give at least one agent id pattern")
    parts = []
    for glob in sorted(set(globs)):
        if not _GLOB.fullmatch(glob):
            raise ValueError(
                f"{glob!r} is not an agent id pattern: use a-z, 0-9, '-', '*' and '?' "
                "(at most 63 characters)"
            )
        # a `*` or `?` stands for at least "a" here: the most a glob can match
        if not is_agent_id(glob.replace("*", "a").replace("?", "a")):
            raise ValueError(f"{glob!r} matches no valid agent id (a DNS label)")
        parts.append("".join({"*": "[a-z0-9-]*", "?": "[a-z0-9-]"}.get(c, c) for c in glob))
    return "|".join(parts)


def command_keys_regex(globs: list[str] | tuple[str, ...]) -> str:
    """Routing keys `agent.<id>.<kind>` for every valid agent id matching one of `globs`.

    The lookahead makes the id word a valid agent id; the glob part chooses which ones.
    """
    kinds = "|".join(COMMAND_KINDS)
    return rf"^agent\.(?={_AGENT_ID}\.)(?:{glob_regex(globs)})\.(?:{kinds})$"


def _name(name: str) -> str:
    """A resource name as a regex (prefixes are DNS labels: the dot is the only metachar)."""
    return name.replace(".", r"\.")


def _one_of(*names: str) -> str:
    return "^(?:" + "|".join(names) + ")$" if len(names) > 1 else f"^{names[0]}$"


def _check_prefix(topology: Topology) -> None:
    if not is_agent_id(topology.prefix):
        raise ValueError(f"invalid prefix {topology.prefix!r}: it must be a DNS label")


def agent_grant(topology: Topology, globs: list[str], *, subscribe: bool = False) -> Grant:
    """An agent: publishes its own commands only; with `subscribe`, reads the events stream.

    No *configure* (the agent never declares), *write* on the commands exchange only, narrowed
    by a topic permission to `agent.<matching id>.<kind>`, and no *read* on any exchange (see
    the module docstring); `subscribe` adds *read* on the events log stream.
    """
    _check_prefix(topology)
    read = _one_of(_name(topology.events_log)) if subscribe else NOTHING
    return Grant(
        role="agent",
        permissions=VhostPermissions(
            configure=NOTHING, write=_one_of(_name(topology.commands_exchange)), read=read
        ),
        topic_permissions=(
            TopicPermission(
                exchange=topology.commands_exchange,
                write=command_keys_regex(globs),
                read=NOTHING,
            ),
        ),
    )


def subscriber_grant(topology: Topology) -> Grant:
    """A subscriber: server-named queues of its own, bound to the events exchange; the stream.

    It writes no registry name, so it can neither publish commands or events nor bind a
    registry queue anywhere; it reads no commands.
    """
    _check_prefix(topology)
    return Grant(
        role="subscriber",
        permissions=VhostPermissions(
            configure=_one_of(SERVER_NAMED),
            write=_one_of(SERVER_NAMED),
            read=_one_of(SERVER_NAMED, _name(topology.events_exchange), _name(topology.events_log)),
        ),
    )


def registry_grant(topology: Topology) -> Grant:
    """The registry's worker and API: declares, publishes and consumes its own names only.

    *configure* and *write* on every exchange and queue of the registry (it declares them all,
    publishes events and dead letters, binds its queues), *write* on the default exchange
    (replies to the API's write gateway: see the module docstring); *read* on the commands queue (to
    consume) and on the exchanges its queues are bound to (commands, dead-letter, events).
    """
    _check_prefix(topology)
    # the commands and dead-letter queues are named as their exchanges: dict.fromkeys dedups
    own = dict.fromkeys((*topology.exchanges, *topology.queues))
    writes = (*own, DEFAULT_EXCHANGE)
    read = dict.fromkeys(
        (topology.commands_queue, topology.dead_letter_exchange, topology.events_exchange)
    )
    return Grant(
        role="registry",
        permissions=VhostPermissions(
            configure=_one_of(*map(_name, own)),
            write=_one_of(*map(_name, writes)),
            read=_one_of(*map(_name, read)),
        ),
    )
