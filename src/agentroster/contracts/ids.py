"""Agent, instance and broker-user identifiers.

An `agent_id` is a DNS label (1-63 chars of `[a-z0-9-]`, no leading or trailing dash): safe in
routing keys, URLs and Redis keys alike. A message's AMQP `user_id` is the broker user name of
the connection that published it (RabbitMQ refuses any other), see `broker_user`.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import unicodedata
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import Field, StringConstraints

AGENT_ID_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_AGENT_ID_RE = re.compile(AGENT_ID_PATTERN)
_NOT_LABEL = re.compile(r"[^a-z0-9]+")
#: The user an AMQP client (aio-pika, amqplib) logs in as when the URL names none.
AMQP_DEFAULT_USER = "guest"

AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
#: An integer that may exceed 2^31 (a revision continues from the clock in ms after Redis lost
#: its data): `format: int64` makes generated clients give it a 64-bit type.
Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]
#: Instance ids appear in Redis keys and logs: printable, no spaces, bounded.
INSTANCE_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
InstanceId = Annotated[str, StringConstraints(pattern=INSTANCE_ID_PATTERN)]


def is_agent_id(value: str) -> bool:
    """Whether `value` is a valid agent id."""
    return _AGENT_ID_RE.fullmatch(value) is not None


def derive_agent_id(name: str) -> str:
    """The agent id a card's name stands for: lower-case, ASCII, dashes, at most 63 chars.

    `"Weather Bot (EU)"` becomes `"weather-bot-eu"`. Raises `ValueError` when nothing is left.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    label = _NOT_LABEL.sub("-", ascii_name.lower()).strip("-")[:63].strip("-")
    if not label:
        raise ValueError(f"cannot derive an agent id from name {name!r}; pass agent_id")
    return label


def new_instance_id() -> str:
    """An id unique to this process lifetime: host (or pod) name plus a random suffix."""
    host = os.environ.get("HOSTNAME") or socket.gethostname() or "host"
    host = re.sub(r"[^A-Za-z0-9.-]", "-", host)[:100]
    return f"{host}-{secrets.token_hex(4)}"


def broker_user(broker_url: str) -> str:
    """The user name a connection to `broker_url` authenticates as (percent-decoded).

    It is the only `user_id` RabbitMQ accepts on that connection's messages.
    """
    username = urlsplit(broker_url).username
    return unquote(username) if username else AMQP_DEFAULT_USER
