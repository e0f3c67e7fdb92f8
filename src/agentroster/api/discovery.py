"""One page of discovery, as `GET /v1/agents` and the MCP tool `discover_agents` answer it.

From the API process's read model in memory when it is ready, otherwise from Redis (while the
model loads or rebuilds, or with `AGENTROSTER_DISCOVERY_SOURCE=redis`): never a mix of the two.
"""

from __future__ import annotations

from typing import Any

import orjson

from agentroster.api.models import summary_json
from agentroster.api.read_model import ReadModel, RevisionAhead
from agentroster.registry.terms import Filters
from agentroster.store.reader import ListStatus, RegistryReader


async def discovery_page(
    read_model: ReadModel | None,
    reader: RegistryReader,
    status: ListStatus,
    limit: int,
    cursor: str | None,
    filters: Filters,
    *,
    min_revision: int | None = None,
    wait_s: float = 0.0,
) -> bytes:
    """`{"revision", "agents", "next_cursor"}` as JSON bytes (the `AgentList` model's shape).

    With `min_revision`, waits up to `wait_s` for the read model to reach it (raising
    `RevisionNotReached`, `RevisionAhead` or `TooManyWaiting` as the route documents).
    """
    if read_model is not None and read_model.ready and min_revision is not None:
        await read_model.reach(min_revision, wait_s)
    body: dict[str, Any]
    if read_model is not None and read_model.ready:
        revision, cut = read_model.page(status, limit, cursor, filters)
        body = {"revision": revision, "agents": cut.agents, "next_cursor": cut.next_cursor}
    else:  # discovery from Redis, or the read model is (re)building: never a mix of two
        page = await reader.list_agents(status, limit, cursor, filters)
        if min_revision is not None and page.revision < min_revision:
            raise RevisionAhead(min_revision, page.revision)  # Redis is the registry
        body = {
            "revision": page.revision,
            "agents": [summary_json(agent) for agent in page.agents],
            "next_cursor": page.next_cursor,
        }
    # built with orjson: pydantic validation of each already-validated stored view was a
    # quarter of a page's CPU (bench/README.md, Discovery); `AgentList` documents it
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)
