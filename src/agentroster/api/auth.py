"""Who is calling: API keys, their scopes, and what a key may write.

A key is presented as `Authorization: Bearer <key>`, or as the password of HTTP Basic (what a
client sends for a URL like `http://agent:<key>@registry:8000`, so clients that take only a base
URL can carry one). `authenticate` resolves it to a `Principal`; `authorize_write` decides
whether that principal may write an agent.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hmac
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from agentroster.api.errors import ApiError
from agentroster.contracts.gateway import key_identity

#: What 401 answers carry, as RFC 9110 and RFC 6750 ask.
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="agentroster"'}


class Scope(StrEnum):
    """What a key may do: manage keys and write any agent; write its agents; read."""

    ADMIN = "admin"
    AGENT = "agent"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller authenticated by an API key."""

    key_id: str
    name: str
    scope: Scope
    #: Agent-id globs (`*`, `?`) an `agent` key may write; an admin key writes every agent.
    agent_patterns: tuple[str, ...] = ()

    @property
    def identity(self) -> str:
        """The identity its commands carry: `key:<name>`."""
        return key_identity(self.name)

    def may_write(self, agent_id: str) -> bool:
        """Whether this key may register, heartbeat or deregister `agent_id`."""
        if self.scope is Scope.ADMIN:
            return True
        if self.scope is not Scope.AGENT:
            return False
        return any(fnmatch.fnmatchcase(agent_id, glob) for glob in self.agent_patterns)


class Unauthenticated(ApiError):
    """401: no key, or a key the registry does not know (or revoked)."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthenticated", message, headers=WWW_AUTHENTICATE)


class Forbidden(ApiError):
    """403: the key is known but lacks what the request needs (named in the message)."""

    def __init__(self, message: str, details: object = None) -> None:
        super().__init__(403, "forbidden", message, details)


#: The principal name of the bootstrap key (`AGENTROSTER_BOOTSTRAP_ADMIN_KEY`).
BOOTSTRAP = Principal(key_id="bootstrap", name="bootstrap", scope=Scope.ADMIN)


def presented_key(request: Request) -> str | None:
    """The key the request presents (Bearer, or Basic's password), or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


async def authenticate(request: Request) -> Principal | None:
    """The principal of the request's key; None when it presents none.

    Raises `Unauthenticated` for a key that is not valid. (Stub: only the bootstrap key.)
    """
    key = presented_key(request)
    if key is None:
        return None
    bootstrap = request.app.state.agentroster.settings.bootstrap_admin_key
    if bootstrap is not None and hmac.compare_digest(
        key.encode(), bootstrap.get_secret_value().encode()
    ):
        return BOOTSTRAP
    raise Unauthenticated("the API key is not valid (unknown or revoked)")


def authorize_write(principal: Principal | None, agent_id: str) -> Principal:
    """The principal, if it may write `agent_id`; otherwise 401 (no key) or 403."""
    if principal is None:
        raise Unauthenticated("writes need an API key: Authorization: Bearer <key>")
    if not principal.may_write(agent_id):
        raise Forbidden(
            f"key {principal.key_id!r} may not write agent {agent_id!r}",
            {"scope": principal.scope.value, "agent_patterns": list(principal.agent_patterns)},
        )
    return principal
