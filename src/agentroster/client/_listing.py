"""The list half of list + watch: every page of `GET /v1/agents?status=all` under filters.

Pages come in agent id order, each a consistent read at its own revision (R1 <= ... <= Rn);
the Roster follows events from R1 and waits for Rn to call itself synced (see `roster.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from agentroster.client._state import paused_gc
from agentroster.client.discovery import DiscoveryError, _checked, _parse, _query
from agentroster.client.models import Agent, AgentPage
from agentroster.registry.terms import Filters


class RevisionWentBack(Exception):
    """A later page was at a lower revision than an earlier one: the registry lost its data
    while it was being listed. List again."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Every listed agent, the first page's revision and the last (highest) one."""

    agents: list[Agent]
    first: int
    top: int


async def list_all(http: httpx.AsyncClient, filters: Filters, page_size: int) -> Listing:
    """Read every page of the agents matching `filters`, whatever their status.

    A short page with a cursor means "go on"; a cursor that does not advance is a
    `DiscoveryError` (the list would never end). Each page is parsed with the cyclic GC paused.
    """
    agents: list[Agent] = []
    cursor: str | None = None
    first: int | None = None
    top = 0
    while True:
        params = _query(
            skill=list(filters.skills) or None,
            tag=filters.tag,
            protocol=filters.protocol,
            transport=filters.transport,
            q=filters.q,
            labels=dict(filters.labels) or None,
            verified=filters.verified,
            status="all",
            page_size=page_size,
            cursor=cursor,
        )
        response = _checked(await http.get("/v1/agents", params=params))
        with paused_gc():
            page = _parse(AgentPage, response)
        if page.revision < top:
            raise RevisionWentBack(f"the revision went back from {top} to {page.revision}")
        first = page.revision if first is None else first
        top = page.revision
        agents += page.agents
        if page.next_cursor is None:
            return Listing(agents, first, top)
        if cursor is not None and page.next_cursor <= cursor:
            raise DiscoveryError(200, "invalid-response", "the API's cursor did not advance")
        cursor = page.next_cursor
