"""API keys in the registry's Redis: the token format, the record, and `KeyStore`.

A key is an id (public, short, random: it names the key in lists, logs and URLs) and a secret
(256 random bits). Its creator sees the token `ar_<id>_<secret>` once; Redis keeps the key's
record under the registry's prefix and hash tag (`store/keys.py`: `apikey:<id>`, listed in
`apikeys`) with the SHA-256 of the secret, never the secret. Records are never deleted:
revoking one sets `revoked_at`, so a list shows what was revoked and when.

Keys live with the registry's data: a Redis without persistence loses them on restart (the
bootstrap key, from a setting, is the way back in).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from agentroster.permissions import glob_regex
from agentroster.store.keys import Keys

#: Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "ar_"
#: Random bytes of a secret: 256 bits, as the brute-force margin of a high-entropy secret.
SECRET_BYTES = 32
#: A key id: 16 hex digits (64 random bits: public, only unique, so short is fine).
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
_KEY_ID = re.compile(KEY_ID_PATTERN)
#: The secret as `secrets.token_urlsafe(32)` writes it: 43 base64url characters.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
#: Longest token accepted (any longer is not ours; refused before any work).
MAX_TOKEN_CHARS = 256
#: What a key may do: manage keys and write any agent; write its agents; read discovery.
SCOPES = ("admin", "agent", "read")
#: A principal name: it becomes the identity `key:<name>` in Redis keys and AMQP headers.
PRINCIPAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$"
_PRINCIPAL = re.compile(PRINCIPAL_PATTERN)
#: Most agent-id patterns one key may carry.
MAX_PATTERNS = 32
#: Longest description, in characters.
MAX_DESCRIPTION = 256


class InvalidKey(ValueError):
    """A key that cannot be created as asked (the message says what to change)."""


def secret_digest(secret: str) -> str:
    """The SHA-256 of a secret, hex: what Redis keeps instead of the secret.

    A fast hash is right here, unlike for passwords: the secret is 256 random bits, so no
    dictionary or brute force can invert the digest, and a slow hash (bcrypt, argon2) would
    only cost the API CPU on every request.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A fresh key: `(key_id, secret, token)`, all from `secrets`."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return key_id, secret, f"{TOKEN_PREFIX}{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed token; None for anything else (never raises)."""
    if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        return None
    key_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        return None
    return key_id, secret


def is_key_id(value: str) -> bool:
    """Whether `value` has the shape of a key id."""
    return _KEY_ID.fullmatch(value) is not None


def check_new_key(
    principal: str, scope: str, patterns: list[str] | tuple[str, ...], description: str | None
) -> None:
    """Raise `InvalidKey` naming what is wrong with a key to create."""
    if not _PRINCIPAL.fullmatch(principal):
        raise InvalidKey(
            f"principal {principal!r} is not a name: 1-63 of A-Z, a-z, 0-9, '.', '_', '@', '-', "
            "starting with a letter or digit"
        )
    if scope not in SCOPES:
        raise InvalidKey(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == "agent":
        if len(patterns) > MAX_PATTERNS:
            raise InvalidKey(f"an agent key takes at most {MAX_PATTERNS} agent id patterns")
        try:
            glob_regex(list(patterns))
        except ValueError as exc:
            raise InvalidKey(f"agent id patterns: {exc}") from None
    elif patterns:
        raise InvalidKey(f"agent id patterns are for agent keys; a {scope} key takes none")
    if description is not None and (
        len(description) > MAX_DESCRIPTION or not description.isprintable()
    ):
        raise InvalidKey(
            f"the description must be at most {MAX_DESCRIPTION} printable characters "
            "(no control characters)"
        )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the registry knows of one key (the secret's digest, never the secret)."""

    key_id: str
    principal: str
    scope: str
    agent_patterns: tuple[str, ...]
    created_at: float
    description: str | None
    revoked_at: float | None
    secret_sha256: str

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked (it is then refused everywhere)."""
        return self.revoked_at is not None

    def matches(self, secret: str) -> bool:
        """Whether `secret` is this key's, compared in constant time."""
        return hmac.compare_digest(secret_digest(secret), self.secret_sha256)

    def public(self) -> dict[str, Any]:
        """The record as lists and the admin API show it: no digest, no secret."""
        return {
            "key_id": self.key_id,
            "principal": self.principal,
            "scope": self.scope,
            "agent_patterns": list(self.agent_patterns),
            "created_at": self.created_at,
            "description": self.description,
            "revoked": self.revoked,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: its record and the token, shown to its creator once."""

    record: KeyRecord
    token: str


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(key_id: str, fields: Mapping[Any, Any]) -> KeyRecord | None:
    if not fields:
        return None
    text = {_text(k): _text(v) for k, v in fields.items()}
    revoked = text.get("revoked_at")
    return KeyRecord(
        key_id=key_id,
        principal=text["principal"],
        scope=text["scope"],
        agent_patterns=tuple(orjson.loads(text.get("agents", "[]"))),
        created_at=float(text["created_at"]),
        description=text.get("description") or None,
        revoked_at=float(revoked) if revoked else None,
        secret_sha256=text["sha256"],
    )


class KeyStore:
    """Create, read, list and revoke API keys in the registry's Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = Keys(prefix)

    async def create(
        self,
        principal: str,
        scope: str,
        agent_patterns: list[str] | tuple[str, ...] = (),
        description: str | None = None,
    ) -> NewKey:
        """Create a key; the token in the answer is the only copy of its secret.

        Raises `InvalidKey` for a principal, scope, pattern or description not allowed.
        """
        check_new_key(principal, scope, agent_patterns, description)
        patterns = tuple(dict.fromkeys(agent_patterns))
        key_id, secret, token = new_token()
        record = KeyRecord(
            key_id=key_id,
            principal=principal,
            scope=scope,
            agent_patterns=patterns,
            created_at=round(time.time(), 3),
            description=description,
            revoked_at=None,
            secret_sha256=secret_digest(secret),
        )
        fields = {
            "principal": principal,
            "scope": scope,
            "agents": orjson.dumps(list(patterns)).decode(),
            "created_at": repr(record.created_at),
            "sha256": record.secret_sha256,
        }
        if description:
            fields["description"] = description
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.api_key(key_id), mapping=fields)  # type: ignore[arg-type]  # redis-py's mapping type is too narrow
            pipe.zadd(self._keys.api_keys, {key_id: 0})
            await pipe.execute()
        return NewKey(record, token)

    async def get(self, key_id: str) -> KeyRecord | None:
        """The record of `key_id`, revoked or not; None for an unknown (or malformed) id."""
        if not is_key_id(key_id):
            return None
        fields = await self._redis.hgetall(self._keys.api_key(key_id))
        return _record(key_id, fields)

    async def page(
        self, *, limit: int = 1000, after: str | None = None
    ) -> tuple[list[KeyRecord], str | None]:
        """A page of keys in id order after `after`, and the id to go on from (None: the end)."""
        start = f"({after}" if after else "-"
        ids = await self._redis.zrange(
            self._keys.api_keys, start, "+", bylex=True, offset=0, num=limit + 1
        )
        page = [_text(raw) for raw in ids[:limit]]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in page:
                pipe.hgetall(self._keys.api_key(key_id))
            rows = await pipe.execute()
        records = [r for key_id, f in zip(page, rows, strict=True) if (r := _record(key_id, f))]
        return records, page[-1] if len(ids) > limit else None

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke `key_id` (again: no change, the first time stays); None for an unknown id."""
        if not is_key_id(key_id):
            return None
        key = self._keys.api_key(key_id)
        # records are never deleted, so one that exists now still exists for the HSETNX
        if not await self._redis.exists(key):
            return None
        await self._redis.hsetnx(key, "revoked_at", repr(round(time.time(), 3)))
        return await self.get(key_id)
