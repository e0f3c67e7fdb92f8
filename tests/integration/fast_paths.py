"""What the tests of HTTP writes and of the fast paths share: a spy gateway (writes recorded
instead of published), and two APIs on one registry, one with a fast path in front of FastAPI
and one without it, whose answers are compared (test_fast_heartbeat.py,
test_fast_get_agent.py).

Each API notes the requests that went on past the fast path to FastAPI (`route_calls`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from agentroster.api import create_api
from agentroster.api.auth import Principal
from agentroster.api.deps import ApiState
from agentroster.api.gateway import CommandGateway, Outcome
from agentroster.contracts.commands import Command
from agentroster.settings import Settings

BOOTSTRAP = "test-bootstrap-admin-key-" + "f" * 16


@dataclass
class Spy(CommandGateway):
    """Records every command; answers `outcome` (`accepted`), or raises `error`."""

    sent: list[tuple[Command, Principal | None, bool]] = field(default_factory=list)
    outcome: Outcome = field(default_factory=lambda: Outcome("accepted"))
    error: Exception | None = None

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(
        self, command: Command, principal: Principal | None, *, wait: bool = False
    ) -> Outcome:
        """Record; answer as told."""
        if self.error is not None:
            raise self.error
        self.sent.append((command, principal, wait))
        return self.outcome


@dataclass
class Api:
    """One API under test: its client, its spy, and the paths of the requests that reached
    FastAPI (past the fast path, if any)."""

    client: httpx.AsyncClient
    spy: Spy
    state: ApiState
    route_calls: list[str] = field(default_factory=list)


class PassedOn:
    """ASGI middleware noting the path of each HTTP request that reaches the app behind it."""

    def __init__(self, app: ASGIApp, calls: list[str]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Note an HTTP request's path; pass everything on."""
        if scope["type"] == "http":
            self.calls.append(scope["path"])
        await self.app(scope, receive, send)


def _count_route_calls(app: FastAPI, fast_path: type, calls: list[str]) -> None:
    """Note each request that goes on to FastAPI (past `fast_path`, if installed)."""
    stack = app.user_middleware  # outermost first; built on the first request
    fast = [n for n, m in enumerate(stack) if _is(m, fast_path)]
    stack.insert(fast[0] + 1 if fast else 0, Middleware(PassedOn, calls=calls))


def _is(middleware: Middleware, fast_path: type) -> bool:
    factory: object = middleware.cls
    return factory is fast_path


@contextlib.asynccontextmanager
async def serve(settings: Settings, fast_path: type, *, fast: bool) -> AsyncIterator[Api]:
    """The API in process, with or without `fast_path`."""
    spy = Spy()
    app = create_api(settings, gateway=spy)
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if not _is(m, fast_path)]
    api_calls: list[str] = []
    _count_route_calls(app, fast_path, api_calls)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        ) as client,
    ):
        yield Api(client, spy, app.state.agentroster, api_calls)


@contextlib.asynccontextmanager
async def pair(settings: Settings, fast_path: type, **more: Any) -> AsyncIterator[tuple[Api, Api]]:
    """(with `fast_path`, without it), on the same registry, with the bootstrap key; `more`
    changes settings."""
    # keys stay cached for the whole test (past the setting's bound of 1 s, which model_copy
    # does not check): which requests the fast path answers must not depend on how fast a
    # loaded machine runs the test
    tuned = settings.model_copy(
        update={"bootstrap_admin_key": SecretStr(BOOTSTRAP), "key_cache_s": 3600.0, **more}
    )
    async with (
        serve(tuned, fast_path, fast=True) as fast,
        serve(tuned, fast_path, fast=False) as slow,
    ):
        yield fast, slow


async def new_key(api: Api, scope: str, *patterns: str) -> str:
    """A fresh key (its own rate bucket) of `scope` that writes `patterns`."""
    created = await api.state.keys.create(f"p-{len(patterns)}-{id(patterns)}", scope, patterns)
    return created.token


def bearer(token: str) -> dict[str, str]:
    """The header presenting `token`."""
    return {"Authorization": f"Bearer {token}"}
