"""Who is calling: API keys, their scopes, and what a key may write.

A key is presented as `Authorization: Bearer <key>`, or as the password of HTTP Basic (what a
client sends for a URL like `http://agent:<key>@registry:8000`, so clients that take only a base
URL can carry one). `authenticate` resolves it to a `Principal` (through the process's
`KeyVerifier`: api/key_verifier.py); `authorize_write` decides whether that principal may write
an agent; `require_admin` and `require_read` guard the key endpoints and discovery.

    Unauthenticated   401 unauthenticated, with WWW-Authenticate: no key where one is needed, or
                      one that is malformed, unknown or revoked
    Forbidden         403 forbidden: the key lacks a scope or an agent pattern (named)
    RateLimited       429 rate-limited, with Retry-After: the key over its rate, or the client
                      over its failed attempts
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request

from agentroster.api.errors import ApiError, ErrorResponse
from agentroster.contracts.gateway import key_identity

#: What 401 answers carry, as RFC 9110 and RFC 6750 ask.
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="agentroster"'}
#: Longest Authorization header looked at: a token is under 100 characters, Basic's a bit more.
MAX_AUTHORIZATION_CHARS = 1024


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


class RateLimited(ApiError):
    """429: too many requests with one key (or failed attempts from one client), per process."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(
            429,
            "rate-limited",
            message,
            {"retry_after_s": retry_after_s},
            headers={"Retry-After": str(retry_after_s)},
        )


#: The refusals routes behind a key document in OpenAPI.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorResponse,
        "description": "No API key, or one that is malformed, unknown or revoked.",
        "headers": {
            "WWW-Authenticate": {
                "description": '`Bearer realm="agentroster"`',
                "schema": {"type": "string"},
            }
        },
    },
    403: {"model": ErrorResponse, "description": "The key lacks the scope or pattern needed."},
    429: {
        "model": ErrorResponse,
        "description": "Over the key's rate (per API process), or too many failed attempts.",
        "headers": {"Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}}},
    },
}
#: What discovery routes may answer besides their own (a key is asked for only when
#: `AGENTROSTER_READ_REQUIRES_KEY` is on; any scope reads).
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: AUTH_RESPONSES[status] for status in (401, 429)
}


#: The principal name of the bootstrap key (`AGENTROSTER_BOOTSTRAP_ADMIN_KEY`).
BOOTSTRAP = Principal(key_id="bootstrap", name="bootstrap", scope=Scope.ADMIN)


def presented_key(request: Request) -> str | None:
    """The key the request presents (Bearer, or Basic's password), or None without any.

    An Authorization header that carries no usable key (another scheme, too long, bad base64,
    no password) is refused with 401 rather than taken for no key: the client meant to
    authenticate and should learn that it did not.
    """
    header = request.headers.get("authorization")
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION_CHARS:
        raise Unauthenticated("the Authorization header is too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("the Basic credentials are not valid base64 of UTF-8") from None
        password = decoded.partition(":")[2]
        if password:
            return password
        raise Unauthenticated("the Basic credentials carry no key: send it as the password")
    raise Unauthenticated("send the API key as Authorization: Bearer <key> (or Basic's password)")


_UNSET = object()


async def authenticate(request: Request) -> Principal | None:
    """The principal of the request's key; None when it presents none.

    Raises `Unauthenticated` for a key that is not valid, `RateLimited` over a rate, and
    Redis's error (503) when the key must be read and Redis does not answer. Checked once per
    request, however many dependencies ask.
    """
    known = getattr(request.state, "principal", _UNSET)
    if known is not _UNSET:
        return known  # type: ignore[return-value]  # set below, always a Principal or None
    key = presented_key(request)
    principal = None
    if key is not None:
        verifier = request.app.state.agentroster.key_verifier
        client = request.client.host if request.client else ""
        principal = await verifier.verify(key, client)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal | None, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """An admin key's principal: 401 without a key, 403 with a key of another scope."""
    if principal is None:
        raise Unauthenticated("this needs an admin API key: Authorization: Bearer <key>")
    if principal.scope is not Scope.ADMIN:
        raise Forbidden(
            f"key {principal.key_id!r} has scope {principal.scope.value!r}; this needs scope "
            "'admin'",
            {"needs_scope": "admin", "scope": principal.scope.value},
        )
    return principal


async def require_read(request: Request) -> Principal | None:
    """With `AGENTROSTER_READ_REQUIRES_KEY`, a key of any scope (401 without one).

    Without it, discovery is open and a presented key is not even looked at.
    """
    if not request.app.state.agentroster.settings.read_requires_key:
        return None
    principal = await authenticate(request)
    if principal is None:
        raise Unauthenticated("this registry's discovery needs an API key (any scope)")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
#: For `dependencies=[ReadAccess]` on discovery routes.
ReadAccess = Depends(require_read)


def authorize_write(principal: Principal | None, agent_id: str) -> Principal:
    """The principal, if it may write `agent_id`; otherwise 401 (no key) or 403."""
    if principal is None:
        raise Unauthenticated("writes need an API key: Authorization: Bearer <key>")
    if not principal.may_write(agent_id):
        what = (
            f"its patterns {', '.join(principal.agent_patterns)} do not match it"
            if principal.scope is Scope.AGENT
            else f"its scope {principal.scope.value!r} writes no agent"
        )
        raise Forbidden(
            f"key {principal.key_id!r} may not write agent {agent_id!r}: {what}",
            {
                "agent_id": agent_id,
                "scope": principal.scope.value,
                "agent_patterns": list(principal.agent_patterns),
            },
        )
    return principal
