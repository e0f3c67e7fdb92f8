"""`agentroster keys ...`: create, list and revoke API keys in the registry's Redis.

For the operator, on a machine that reaches the registry's Redis (the same AGENTROSTER_*
settings as the API): the way to the first key without a bootstrap key. A new key's token is
printed once, on stdout; nothing else ever shows a secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from agentroster.store.api_keys import KeyRecord, KeyStore

T = TypeVar("T")

keys_app = typer.Typer(
    help="API keys: create (the token is printed once), list, revoke (acts on the registry's "
    "Redis).",
    no_args_is_help=True,
)
JsonOption = Annotated[bool, typer.Option("--json", help="JSON, for scripts.")]


def _require_server() -> None:
    """Exit 2 naming the install command on a base install (the key store needs Redis)."""
    from agentroster.cli import require_server

    require_server("keys")


def _call(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    """Run `action` on the configured registry's key store."""
    from agentroster.cli import _settings

    _require_server()
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from agentroster.store.api_keys import KeyStore

    settings = _settings(None, None)

    async def run() -> T:
        redis = Redis.from_url(settings.redis_url)
        try:
            return await action(KeyStore(redis, settings.prefix))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except RedisError as exc:
        typer.echo(f"error: the registry's Redis does not answer: {exc}", err=True)
        raise typer.Exit(1) from None


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _printable(text: str) -> str:
    """What a terminal shows: no control character of a stored value is ever executed."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@keys_app.command("create")
def create(
    principal: Annotated[
        str,
        typer.Option(help="Who the key speaks for; its commands carry identity key:<principal>."),
    ],
    scope: Annotated[str, typer.Option(help="admin, agent or read.")],
    agent: Annotated[
        list[str] | None,
        typer.Option(help="Agent id glob an agent key may write, e.g. 'weather-*' (repeat)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a key and print its token, once: it is stored only as a hash."""
    _require_server()
    import orjson

    from agentroster.store.api_keys import InvalidKey

    try:
        created = _call(lambda store: store.create(principal, scope, agent or [], description))
    except InvalidKey as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(orjson.dumps({**created.record.public(), "token": created.token}).decode())
        return
    typer.echo(f"key id: {created.record.key_id}")
    typer.echo(f"token:  {created.token}")
    typer.echo("The token is shown this once: keep it now (the registry stores only its hash).")


@keys_app.command("list")
def list_keys(json_output: JsonOption = False) -> None:
    """Print every key (revoked ones too): id, principal, scope, patterns; never a secret."""
    import orjson

    async def everything(store: KeyStore) -> list[KeyRecord]:
        found: list[KeyRecord] = []
        after: str | None = None
        while True:
            page, after = await store.page(limit=1000, after=after)
            found.extend(page)
            if after is None:
                return found

    records = _call(everything)
    if json_output:
        for record in records:
            typer.echo(orjson.dumps(record.public()).decode())
        return
    rows = [("KEY_ID", "PRINCIPAL", "SCOPE", "CREATED", "REVOKED", "AGENTS", "DESCRIPTION")]
    rows += [
        (
            r.key_id,
            _printable(r.principal),
            r.scope,
            _when(r.created_at),
            _when(r.revoked_at),
            ",".join(r.agent_patterns) or "-",
            _printable(r.description or ""),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key: every API process refuses it within AGENTROSTER_KEY_CACHE_S."""
    record = _call(lambda store: store.revoke(key_id))
    if record is None:
        typer.echo(f"error: the registry has no API key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{key_id}: revoked at {_when(record.revoked_at)} (principal {record.principal})")
