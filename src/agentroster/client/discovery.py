"""Find agents in a registry over its HTTP read API.

async with DiscoveryClient("http://registry:8000") as registry:
    async for agent in registry.find(skill="forecast", labels={"team": "geo"}):
        print(agent.agent_id, [e.address for e in agent.endpoints])
    detail = await registry.get("weather")         # None when the registry has no such agent
    card = await registry.card("weather", version="1.0")

Errors:

    DiscoveryError          the API answered with an error (4xx/5xx) or with something that is
                            not the answer expected: `status`, `code`, `message`, `details`
    httpx.TransportError    the API could not be reached (connection refused, timeout, ...)

Only the filters given are sent, so a filter the registry does not know yet is a 422 (the API
rejects unknown parameters) instead of a silently unfiltered list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from agentroster.client.models import Agent, AgentPage, DetailedAgent

__all__ = ["DEFAULT_TIMEOUT_S", "DiscoveryClient", "DiscoveryError"]

#: Seconds to wait for connecting, and for each read, before giving up.
DEFAULT_TIMEOUT_S = 10.0

_Model = TypeVar("_Model", bound=BaseModel)
#: A query as httpx takes it: (name, value) pairs, a name repeated for each of its values.
_QueryItems = list[tuple[str, str | int | float | bool | None]]


class DiscoveryError(Exception):
    """The discovery API answered with an error, in its one shape or (from a proxy) another.

    `status` is the HTTP status; `code` the API's stable machine-readable code
    (`invalid-request`, `agent-not-found`, `store-unavailable`, ...; derived from the status
    when the body is not the API's error shape); `message` is for people; `details` as the API
    sent them (for `invalid-request`, one entry per bad parameter).
    """

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(status, code, message, details)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status}, {self.code})"

    @classmethod
    def from_response(cls, response: httpx.Response) -> DiscoveryError:
        """The error a response stands for: from the API's error shape, else from the status."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return cls(
                response.status_code,
                error["code"],
                str(error.get("message") or error["code"]),
                error.get("details"),
            )
        phrase = _phrase(response.status_code)
        text = response.text.strip()
        message = f"HTTP {response.status_code} {phrase}" + (f": {text[:200]}" if text else "")
        return cls(response.status_code, phrase.lower().replace(" ", "-").replace("'", ""), message)


class DiscoveryClient:
    """A client of one registry's read API (`GET /v1/agents...`); use it as a context manager.

    `transport` replaces the network, e.g. `httpx.ASGITransport(app=...)` to talk to an API in
    the same process, or `httpx.MockTransport(handler)` in tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def find(
        self,
        *,
        skill: str | list[str] | None = None,
        tag: str | None = None,
        protocol: str | None = None,
        transport: str | None = None,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        verified: bool | None = None,
        status: str = "live",
        page_size: int = 100,
        signature: str | None = None,
    ) -> AsyncIterator[Agent]:
        """Every agent matching all the filters given, in agent id order, page after page.

        `skill` may be several skills (the agent has all of them); `labels` must all match;
        `q` searches name, description and skills; `verified` True keeps the agents whose
        well-known card the registry fetched and found matching, False those it did not;
        `signature` is `valid`, `invalid` or `unsigned` (the registry's check of the card's
        signatures); `status` is `live`, `idle`, `offline` or `all`. Pages of `page_size`
        (1..1000) are fetched as the iteration needs them.
        A label key containing `:` cannot be filtered by: `ValueError`.
        """
        cursor: str | None = None
        while True:
            page = await self.list_page(
                skill=skill,
                tag=tag,
                protocol=protocol,
                transport=transport,
                q=q,
                labels=labels,
                verified=verified,
                status=status,
                page_size=page_size,
                cursor=cursor,
                signature=signature,
            )
            for agent in page.agents:
                yield agent
            if page.next_cursor is None:
                return
            if page.next_cursor == cursor:
                raise DiscoveryError(
                    200,
                    "invalid-response",
                    f"the API returned the same cursor {cursor!r} again: paging would not end",
                )
            cursor = page.next_cursor

    async def list_page(
        self,
        *,
        skill: str | list[str] | None = None,
        tag: str | None = None,
        protocol: str | None = None,
        transport: str | None = None,
        q: str | None = None,
        labels: Mapping[str, str] | None = None,
        verified: bool | None = None,
        status: str = "live",
        page_size: int = 100,
        cursor: str | None = None,
        signature: str | None = None,
    ) -> AgentPage:
        """One page of `find`: its agents, the registry revision, and `next_cursor`.

        Pass `next_cursor` back as `cursor` (with the same filters) for the next page; it is
        None on the last page. Follow events after `revision` to keep the list current.
        """
        params = _query(
            skill=skill,
            tag=tag,
            protocol=protocol,
            transport=transport,
            q=q,
            labels=labels,
            verified=verified,
            status=status,
            page_size=page_size,
            cursor=cursor,
            signature=signature,
        )
        response = await self._http.get("/v1/agents", params=params)
        return _parse(AgentPage, _checked(response))

    async def get(self, agent_id: str) -> DetailedAgent | None:
        """One agent with its status, lease and live instances; None if the registry has none.

        Only the API's `agent-not-found` is None: any other 404 (a wrong `base_url`, say) is a
        `DiscoveryError`, like every other error.
        """
        response = await self._http.get(f"/v1/agents/{_segment(agent_id)}")
        if response.status_code == 404:
            error = DiscoveryError.from_response(response)
            if error.code == "agent-not-found":
                return None
            raise error
        return _parse(DetailedAgent, _checked(response))

    async def card(self, agent_id: str, version: str | None = None) -> dict[str, Any]:
        """The agent's card as registered; with `version` (`0.3`, `1.0`) asked in that A2A version.

        `version` is sent as the `A2A-Version` header; a signed card is returned as registered
        whatever the version. An unknown agent is a `DiscoveryError` (`agent-not-found`), and so
        is a version not served or, asked for as `0.3`, a card none of whose interfaces speaks
        0.x (`version-not-supported`).
        """
        headers = {"A2A-Version": version} if version is not None else None
        response = _checked(
            await self._http.get(f"/v1/agents/{_segment(agent_id)}/card", headers=headers)
        )
        try:
            card = response.json()
        except ValueError:
            card = None
        if not isinstance(card, dict):
            raise DiscoveryError(
                response.status_code, "invalid-response", "the card is not a JSON object"
            )
        return card

    async def aclose(self) -> None:
        """Close the connections (the context manager does this on exit)."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)


def _query(
    *,
    skill: str | list[str] | None = None,
    tag: str | None = None,
    protocol: str | None = None,
    transport: str | None = None,
    q: str | None = None,
    labels: Mapping[str, str] | None = None,
    verified: bool | None = None,
    status: str = "live",
    page_size: int = 100,
    cursor: str | None = None,
    signature: str | None = None,
) -> _QueryItems:
    """The query of `GET /v1/agents`: only the filters given; `skill` and `label` repeated."""
    params: _QueryItems = []
    skills = [skill] if isinstance(skill, str) else list(skill or ())
    params += [("skill", s) for s in skills]
    for name, value in (
        ("tag", tag),
        ("protocol", protocol),
        ("transport", transport),
        ("q", q),
        ("signature", signature),
    ):
        if value is not None:
            params.append((name, value))
    for key, value in (labels or {}).items():
        if ":" in key:  # `label=a:b:c` means key `a`: this filter cannot be expressed
            raise ValueError(f"label key {key!r} contains ':', which the API cannot filter by")
        params.append(("label", f"{key}:{value}"))
    if verified is not None:
        params.append(("verified", "true" if verified else "false"))
    params += [("status", status), ("limit", str(page_size))]
    if cursor is not None:
        params.append(("cursor", cursor))
    return params


def _checked(response: httpx.Response) -> httpx.Response:
    """The response if it succeeded; else its `DiscoveryError`."""
    if response.is_success:
        return response
    raise DiscoveryError.from_response(response)


def _parse(model: type[_Model], response: httpx.Response) -> _Model:
    """The response's JSON as `model`; an answer of another shape is a `DiscoveryError`."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise DiscoveryError(
            response.status_code,
            "invalid-response",
            f"the API's answer is not a valid {model.__name__}: {exc.error_count()} errors",
            exc.errors(include_url=False, include_input=False),
        ) from exc


def _segment(agent_id: str) -> str:
    """`agent_id` as one path segment: a `/`, `.` or `..` in it cannot reach another route.

    The API answers a malformed id with a 422; the client does not judge ids itself.
    """
    return quote(agent_id, safe="").replace(".", "%2E")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
