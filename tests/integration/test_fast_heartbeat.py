"""The heartbeat fast path (api/fast_heartbeat.py) answers exactly what the FastAPI route does.

Two APIs on the same registry (Redis) and a spy gateway each: one as built, one without the
fast path. Every request, common or hostile, goes to both; status, header list and body must
be the same (the body's `seq` aside where the API numbered it by its clock). The common ones
must have been answered without the route, the others by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from agentroster.api import create_api
from agentroster.api.fast_heartbeat import HEARTBEAT_ROUTE, FastHeartbeat
from agentroster.api.gateway import BrokerUnavailable
from agentroster.settings import Settings
from tests.integration.fast_paths import BOOTSTRAP, Api, bearer, new_key, pair

BURST = 4
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def apis(settings: Settings, cleanup: None) -> AsyncIterator[tuple[Api, Api]]:
    """(with the fast path, without it), on the same registry."""
    async with pair(settings, FastHeartbeat) as both_apis:
        yield both_apis


def heartbeat(agent_id: str = "weather-1", instance_id: str = "i1") -> str:
    return f"/v1/agents/{agent_id}/instances/{instance_id}/heartbeat"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: Any


def answer(response: httpx.Response, *, clock_seq: bool) -> Answer:
    """What a client sees; the seq is masked where the API chose it by its clock."""
    body = response.json()
    if clock_seq and isinstance(body, dict) and "seq" in body:
        body["seq"] = "<clock>"
    return Answer(response.status_code, list(response.headers.raw), body)


async def both(
    apis: tuple[Api, Api],
    path: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    params: dict[str, str] | None = None,
) -> Answer:
    """Send one request to both APIs; their answers must be equal (it is returned)."""
    fast, slow = apis
    clock_seq = _clock_numbered(content)
    answers = [
        answer(
            await api.client.post(path, content=content, headers=headers, params=params),
            clock_seq=clock_seq,
        )
        for api in (fast, slow)
    ]
    assert answers[0] == answers[1], (path, content, headers)
    return answers[0]


def _clock_numbered(content: bytes | None) -> bool:
    """Whether the API numbers this request's heartbeat by its clock (it sends no seq)."""
    try:
        sent = orjson.loads(content or b"{}")
    except orjson.JSONDecodeError:
        return True
    return not isinstance(sent, dict) or sent.get("seq") is None


async def warm(apis: tuple[Api, Api], token: str) -> None:
    """Let both APIs read the key once (the fast path takes only keys read already)."""
    for api in apis:
        response = await api.client.post(heartbeat("warm-up"), headers=bearer(token))
        assert response.status_code == 202, response.text


async def test_common_heartbeats_are_answered_in_front_of_fastapi_exactly_as_by_the_route(
    apis: tuple[Api, Api],
) -> None:
    """Bodies empty, `{}`, with every field, nulls, an int TTL; the bootstrap key and an agent
    key: the same answers, 202 with Retry-After, and the fast API's route never ran."""
    fast, slow = apis
    token = await new_key(fast, "agent", "weather-*", "warm-up")
    await warm(apis, token)
    cases: list[tuple[bytes | None, dict[str, str]]] = [
        (None, bearer(token)),
        (b"{}", bearer(token) | JSON),
        (b'{"ttl_s": 12.5, "seq": 7, "card_digest": "sha256:ab"}', bearer(token) | JSON),
        (b'{"ttl_s": 90, "seq": 8}', bearer(token) | JSON),
        (b'{"ttl_s": null, "seq": null, "card_digest": null}', bearer(token) | JSON),
        (b'{"seq": 9007199254740991}', {"Authorization": f"bearer  {token} "} | JSON),
        (b'{"ttl_s": 1}', bearer(BOOTSTRAP) | {"Content-Type": "Application/JSON"}),
    ]
    fast.route_calls.clear()
    for content, headers in cases:
        got = await both(apis, heartbeat(), content=content, headers=headers)
        assert got.status == 202, got
        assert got.body["outcome"] == "accepted"
        renew = str(max(1, int(got.body["heartbeat_in_s"]))).encode()
        assert (b"retry-after", renew) in got.headers
        assert (b"x-content-type-options", b"nosniff") in got.headers
    assert fast.route_calls == []
    assert len(slow.route_calls) == len(cases) + 1  # and its warm-up
    fast_sent = [(c.model_dump(exclude={"sent_at", "seq"}), p, w) for c, p, w in fast.spy.sent]
    slow_sent = [(c.model_dump(exclude={"sent_at", "seq"}), p, w) for c, p, w in slow.spy.sent]
    assert fast_sent == slow_sent
    seqs = [c.seq for c, _, _ in fast.spy.sent]  # the warm-up first
    assert (seqs[3], seqs[4], seqs[6]) == (7, 8, 2**53 - 1)


async def test_unusual_and_hostile_requests_get_the_routes_own_answer(
    apis: tuple[Api, Api],
) -> None:
    """Whatever is not the common case reaches the route and is answered by it, the same on
    both APIs: refusals (401, 403, 413, 422) publish nothing, and a valid heartbeat after them
    still gets through the fast path."""
    fast, _ = apis
    token = await new_key(fast, "agent", "weather-*", "warm-up")
    await warm(apis, token)
    big = b'{"card_digest": "' + b"x" * 2000 + b'"}'
    cases: list[dict[str, Any]] = [
        {"headers": {}},  # no key
        {"headers": bearer("ar_nosuchkey_" + "s" * 40)},
        {"headers": bearer("not-a-key")},
        {"headers": {"Authorization": "Basic !!!"}},
        {"headers": {"Authorization": "Bearer " + "k" * 2000}},
        {"headers": [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")]},
        {"path": heartbeat("billing"), "headers": bearer(token)},  # outside its pattern
        {"path": heartbeat("Weather"), "headers": bearer(token)},
        {"path": heartbeat("weather-1", "bad id"), "headers": bearer(token)},
        {"path": heartbeat("weather-1", "i" * 129), "headers": bearer(token)},
        {"content": b'{"seq": 5}', "headers": bearer(token)},  # no content type
        {"content": b"{", "headers": bearer(token) | JSON},
        {"content": b"[]", "headers": bearer(token) | JSON},
        {"content": b"null", "headers": bearer(token) | JSON},
        {"content": b'{"ttl_s": NaN}', "headers": bearer(token) | JSON},
        {"content": b'{"ttl_s": 0}', "headers": bearer(token) | JSON},
        {"content": b'{"ttl_s": "10"}', "headers": bearer(token) | JSON},
        {"content": b'{"ttl_s": true}', "headers": bearer(token) | JSON},
        {"content": b'{"seq": 0}', "headers": bearer(token) | JSON},
        {"content": b'{"seq": 9007199254740992}', "headers": bearer(token) | JSON},
        {"content": b'{"seq": 3.0}', "headers": bearer(token) | JSON},
        {"content": b'{"seq": "3"}', "headers": bearer(token) | JSON},
        {"content": b'{"card_digest": 1}', "headers": bearer(token) | JSON},
        {"content": b'{"extra": 1}', "headers": bearer(token) | JSON},
        {"content": big, "headers": bearer(token) | JSON},
        {"content": b"\xff\xfe{}", "headers": bearer(token) | JSON},
        {"content": b"{}", "headers": bearer(token) | {"Content-Type": "text/plain"}},
        {"content": b"{}", "headers": bearer(token) | JSON, "params": {"wait": "true"}},
        {"content": b"{}", "headers": bearer(token) | JSON, "params": {"wait": "maybe"}},
    ]
    fast.route_calls.clear()
    sent_before = len(fast.spy.sent)
    statuses = []
    for case in cases:
        got = await both(
            apis,
            case.get("path", heartbeat()),
            content=case.get("content"),
            headers=case["headers"],
            params=case.get("params"),
        )
        assert got.status in (202, 401, 403, 404, 413, 422, 429), got
        if got.status >= 400:
            assert set(got.body) == {"error"}, got
        statuses.append(got.status)

    assert len(fast.route_calls) == len(cases)
    # what the route accepts (e.g. `"3"` for a seq, as pydantic's lax mode does) is published,
    # the `?wait` one waiting; nothing of what it refused
    assert len(fast.spy.sent) - sent_before == statuses.count(202)
    assert [w for _, _, w in fast.spy.sent[sent_before:]].count(True) == 1
    other = await new_key(fast, "agent", "weather-*", "warm-up")
    await warm(apis, other)  # via the route: the key is read
    fast.route_calls.clear()
    valid = await fast.client.post(heartbeat(), headers=bearer(other))
    assert valid.status_code == 202, valid.text
    assert fast.route_calls == []


async def test_a_key_over_its_rate_is_refused_by_the_route_and_others_go_on(
    settings: Settings, cleanup: None
) -> None:
    """A greedy key: its burst is served fast, then 429 with Retry-After from the route
    (counted once per request, not twice), while another key is still answered 202."""
    async with pair(settings, FastHeartbeat, key_rate_per_s=0.001, key_rate_burst=BURST) as apis:
        fast, _ = apis
        greedy = await new_key(fast, "agent", "weather-*", "warm-up")
        honest = await new_key(fast, "agent", "weather-*", "warm-up")
        await warm(apis, greedy)
        await warm(apis, honest)
        fast.route_calls.clear()
        answers = [await both(apis, heartbeat(), headers=bearer(greedy)) for _ in range(BURST)]
        assert [a.status for a in answers] == [202] * (BURST - 1) + [429]
        assert answers[-1].body["error"]["code"] == "rate-limited"
        assert (b"retry-after", b"1000") in answers[-1].headers
        assert fast.route_calls == [heartbeat()]  # only the refusal
        assert (await both(apis, heartbeat(), headers=bearer(honest))).status == 202


async def test_broker_down_is_the_same_503_with_retry_after_and_nothing_recorded(
    apis: tuple[Api, Api],
) -> None:
    """The gateway cannot publish: 503 `broker-unavailable` with its Retry-After, on both."""
    fast, _ = apis
    token = await new_key(fast, "agent", "weather-*", "warm-up")
    await warm(apis, token)
    for api in apis:
        api.spy.error = BrokerUnavailable("connection refused", retry_after_s=3)
    fast.route_calls.clear()
    got = await both(apis, heartbeat(), content=b'{"seq": 5}', headers=bearer(token) | JSON)
    assert got.status == 503
    assert got.body["error"]["code"] == "broker-unavailable"
    assert (b"retry-after", b"3") in got.headers
    assert fast.route_calls == []
    for api in apis:
        api.spy.error = None
    assert (
        await both(apis, heartbeat(), content=b'{"seq": 5}', headers=bearer(token) | JSON)
    ).status == 202


async def test_the_fast_path_keeps_the_request_metrics_of_the_route(
    apis: tuple[Api, Api],
) -> None:
    """Heartbeats answered in front of FastAPI are counted under the route's template."""
    fast, _ = apis
    token = await new_key(fast, "agent", "weather-*", "warm-up")
    await warm(apis, token)
    fast.route_calls.clear()
    for _ in range(2):
        assert (await fast.client.post(heartbeat(), headers=bearer(token))).status_code == 202
    assert fast.route_calls == []
    metrics = (await fast.client.get("/metrics")).text
    line = (
        'agentroster_http_requests_total{method="POST",'
        f'route="{HEARTBEAT_ROUTE}",status="202"}} 3.0'  # the warm-up, by the route, too
    )
    assert line in metrics


def test_the_openapi_document_still_describes_the_heartbeat_route(settings: Settings) -> None:
    """The fast path is not a route: the document is the route's."""
    document = create_api(settings).openapi()
    operation = document["paths"][HEARTBEAT_ROUTE]["post"]
    assert operation["summary"] == "Renew an instance's lease"
    assert orjson.dumps(operation)  # serialisable, as served
