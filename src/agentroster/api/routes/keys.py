"""`/v1/keys`: create, list, read and revoke API keys, with an admin key.

The token is in the answer to its creation only (with `Cache-Control: no-store`); every other
answer, and every log line, shows the key's id and never its secret.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agentroster.api.auth import AUTH_RESPONSES, AdminDep
from agentroster.api.deps import StateDep
from agentroster.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from agentroster.store.api_keys import (
    KEY_ID_PATTERN,
    MAX_DESCRIPTION,
    MAX_PATTERNS,
    PRINCIPAL_PATTERN,
    InvalidKey,
    KeyRecord,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/keys", tags=["keys"])

_RESPONSES: dict[int | str, dict[str, Any]] = {**AUTH_RESPONSES, **ERROR_RESPONSES}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No key with this id."}
}
KeyIdPath = Annotated[
    str, Path(pattern=KEY_ID_PATTERN, description="The key's id (16 hex digits).")
]


class KeyNotFound(ApiError):
    """No key with this id (revoked keys are still found: they are never deleted)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(404, "key-not-found", f"no API key {key_id!r}", {"key_id": key_id})


class NewKeyRequest(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    principal: str = Field(
        pattern=PRINCIPAL_PATTERN,
        description="Who the key speaks for: its commands carry the identity `key:<principal>`. "
        "Keys may share a principal (rotation: create the new key, then revoke the old).",
        examples=["weather-team"],
    )
    scope: Literal["admin", "agent", "read"] = Field(
        description="`admin`: manage keys, write any agent; `agent`: write the agents its "
        "patterns match; `read`: discovery only."
    )
    agent_patterns: list[Annotated[str, Field(max_length=63)]] = Field(
        default=[],
        max_length=MAX_PATTERNS,
        description="For `agent` keys (at least one): agent id globs, `*` and `?` as wildcards.",
        examples=[["weather-*"]],
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class KeyInfo(BaseModel):
    """A key as lists show it: never its secret."""

    key_id: str
    principal: str
    scope: Literal["admin", "agent", "read"]
    agent_patterns: list[str]
    created_at: float = Field(description="Unix time, seconds.")
    description: str | None
    revoked: bool
    revoked_at: float | None = Field(description="Unix time, seconds; null while valid.")


class NewKey(KeyInfo):
    """A key just created, with its token: shown this once, stored nowhere."""

    token: str = Field(description="`ar_<key_id>_<secret>`: send it as `Bearer`.")


class KeyList(BaseModel):
    """A page of keys in id order."""

    keys: list[KeyInfo]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: end.")


def _info(record: KeyRecord) -> dict[str, Any]:
    return record.public()


@router.post(
    "",
    status_code=201,
    response_model=NewKey,
    summary="Create an API key",
    responses={
        400: {"model": ErrorResponse, "description": "The body is not JSON."},
        **_RESPONSES,
    },
)
async def create_key(body: NewKeyRequest, admin: AdminDep, state: StateDep) -> JSONResponse:
    """Create a key; the answer holds its token, which is never shown again."""
    try:
        created = await state.keys.create(
            body.principal, body.scope, body.agent_patterns, body.description
        )
    except InvalidKey as exc:
        raise ApiError(422, "invalid-key", str(exc)) from None
    log.info(
        "API key %s created for principal %r (scope %s) by key %s",
        created.record.key_id,
        created.record.principal,
        created.record.scope,
        admin.key_id,
    )
    return JSONResponse(
        {**_info(created.record), "token": created.token},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.get("", response_model=KeyList, summary="List API keys", responses=_RESPONSES)
async def list_keys(
    admin: AdminDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Keys per page.")] = 100,
    cursor: Annotated[
        str | None, Query(pattern=KEY_ID_PATTERN, description="`next_cursor` of the last page.")
    ] = None,
) -> dict[str, Any]:
    """Every key, revoked ones too, in id order: ids, principals, scopes; never secrets."""
    records, next_cursor = await state.keys.page(limit=limit, after=cursor)
    return {"keys": [_info(r) for r in records], "next_cursor": next_cursor}


@router.get(
    "/{key_id}",
    response_model=KeyInfo,
    summary="Read one API key",
    responses={**_NOT_FOUND, **_RESPONSES},
)
async def get_key(key_id: KeyIdPath, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """One key (never its secret)."""
    record = await state.keys.get(key_id)
    if record is None:
        raise KeyNotFound(key_id)
    return _info(record)


@router.delete(
    "/{key_id}",
    response_model=KeyInfo,
    summary="Revoke an API key",
    responses={**_NOT_FOUND, **_RESPONSES},
)
async def revoke_key(key_id: KeyIdPath, admin: AdminDep, state: StateDep) -> dict[str, Any]:
    """Revoke a key: every API process refuses it within `AGENTROSTER_KEY_CACHE_S`.

    Idempotent: revoking a revoked key answers it as it is (its first revocation time).
    """
    record = await state.keys.revoke(key_id)
    if record is None:
        raise KeyNotFound(key_id)
    log.info("API key %s (principal %r) revoked by key %s", key_id, record.principal, admin.key_id)
    return _info(record)
