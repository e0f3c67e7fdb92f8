"""Property-based run of the read API against its own OpenAPI document (schemathesis).

Every operation the document lists gets generated requests, valid and invalid (examples,
coverage and fuzzing phases); each answer must not be a 5xx, and its status code, content type
and body must be what the document says. The registry holds three real agents, so reads of one
agent hit existing ids as well as unknown and malformed ones.

Bounded and repeatable: at most `MAX_EXAMPLES` fuzzed cases per operation (about 500 requests
in all), derandomized, no example database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentroster.api import create_api
from agentroster.client import Announcement
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card

#: Registered before the run; ids belong to the test registry (its prefix): fixed names are fine.
AGENT_IDS = ("fuzz-alpha", "fuzz-beta", "fuzz-gamma")
#: Fuzzed cases per operation (the examples and coverage phases add their own few).
MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# The document as the app serves it, read when the module is collected. This app only serves
# `/openapi.json`: every case is sent to its test's own app (its registry, its lifespan).
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_api(Settings()),
    # explicit, so that no schemathesis.toml in the working directory changes the run
    config=SchemathesisConfig.from_dict({"seed": 20250501, "generation": {"mode": "all"}}),
).exclude(
    # `/v1/events` (SSE) streams until the client goes away: its requests would never end.
    path_regex=r"^/v1/events",
)


@schema.hook
def flatmap_path_parameters(context: HookContext, path_parameters: dict[str, Any] | None) -> Any:
    """Half the reads of one agent use a registered id (a generated one is almost never).

    Only a valid generated id is swapped, so a case meant to be invalid stays invalid.
    """
    agent_id = (path_parameters or {}).get("agent_id")
    if not (isinstance(agent_id, str) and re.fullmatch(AGENT_ID_PATTERN, agent_id)):
        return st.just(path_parameters)
    registered = st.sampled_from(AGENT_IDS).map(
        lambda known: {**(path_parameters or {}), "agent_id": known}
    )
    return st.one_of(st.just(path_parameters), registered)


def fuzz_card(agent_id: str) -> dict[str, Any]:
    """A v1.0 card; the last agent's also speaks 0.3 at a second url, so that it has a v0.3 view
    (the legacy well-known path answers the others with 400 version-not-supported)."""
    card = a2a_card(agent_id)
    if agent_id == AGENT_IDS[-1]:
        card["supportedInterfaces"].append(
            {
                "url": f"http://127.0.0.1:9/{agent_id}/v03",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "0.3",
            }
        )
    return card


@pytest.fixture
async def agents(worker: Worker, events: EventCollector) -> AsyncIterator[tuple[str, ...]]:
    """`AGENT_IDS`, live, every one's agent.joined received."""
    wanted = set(AGENT_IDS)
    async with contextlib.AsyncExitStack() as stack:
        for agent_id in AGENT_IDS:
            await stack.enter_async_context(
                Announcement(
                    fuzz_card(agent_id),
                    worker.settings.broker_url,
                    prefix=worker.settings.prefix,
                    ttl_s=300,
                )
            )
        await events.wait_until(
            lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "joined"}
        )
        yield AGENT_IDS
    # every deregistration applied and relayed: the worker then stops with nothing in flight
    await events.wait_until(lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "left"})


@pytest.fixture
def app(settings: Settings, agents: tuple[str, ...]) -> FastAPI:
    """The API of the test registry; schemathesis runs its lifespan (and ends it after the test)."""
    return create_api(settings)


@pytest.fixture
def answers() -> Iterator[Counter[tuple[str, str, int]]]:
    """Status codes per operation; afterwards, reads of one agent must have found one (writes
    need a key, which generated requests do not have: they are refused before anything)."""
    seen: Counter[tuple[str, str, int]] = Counter()
    yield seen
    reads = {path for method, path, _ in seen if method == "GET" and "{agent_id}" in path}
    for path in reads:
        assert seen[("GET", path, 200)], f"no generated request to {path} read a registered agent"


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # one registry and one app serve every case of an operation, on purpose
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
async def test_every_operation_answers_as_documented(
    case: Case[Any], app: FastAPI, answers: Counter[tuple[str, str, int]]
) -> None:
    # schemathesis calls the app from its own thread; the worker's loop runs meanwhile
    response = await asyncio.to_thread(case.call_and_validate, checks=CHECKS, app=app)
    answers[(case.operation.method.upper(), case.operation.path, response.status_code)] += 1
