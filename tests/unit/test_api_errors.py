"""The API's error shape, probes, metrics and own card, with no service running.

Redis and RabbitMQ point at a closed port: what needs no service must still answer, and what
needs one must fail as a 503 in the one error shape, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from agentroster.api.routes.agents import etag_matches
from agentroster.settings import Settings
from tests.helpers import serve_api

CLOSED = Settings(
    redis_url="redis://127.0.0.1:1/0",
    broker_url="amqp://guest:guest@127.0.0.1:1/",
    prefix="unit-api",
)


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(CLOSED, wait_ready=False) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


async def test_an_unknown_query_parameter_is_422_not_silently_ignored(
    api: httpx.AsyncClient,
) -> None:
    """A misspelt filter (`skills`) must not return every agent as a match."""
    error = error_of(await api.get("/v1/agents", params={"skills": "echo", "limit": 5}), 422)
    assert error["code"] == "invalid-request"
    assert error["details"] == [
        {"in": "query", "parameter": "skills", "message": "Unknown parameter"}
    ]


async def test_every_bad_parameter_is_named(api: httpx.AsyncClient) -> None:
    """Two bad parameters: both named, in the message and in the details."""
    error = error_of(
        await api.get("/v1/agents", params={"limit": "x", "status": "dead", "cursor": "A!"}),
        422,
    )
    assert error["message"] == "invalid parameters: cursor, limit, status"
    assert {(d["in"], d["parameter"]) for d in error["details"]} == {
        ("query", "limit"),
        ("query", "status"),
        ("query", "cursor"),
    }


async def test_an_unknown_path_is_404_in_the_error_shape(api: httpx.AsyncClient) -> None:
    """Routing errors answer in the one shape too."""
    assert error_of(await api.get("/v2/nothing"), 404)["code"] == "not-found"


async def test_a_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    """POST on a read-only path: 405, saying which methods are allowed."""
    response = await api.post("/v1/agents")
    assert error_of(response, 405)["code"] == "method-not-allowed"
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/agents/weather", "/v1/agents/weather/card"])
async def test_redis_unreachable_is_503_not_500(api: httpx.AsyncClient, path: str) -> None:
    """A Redis outage is no bug of the request: 503 with Retry-After."""
    response = await api.get(path)
    assert error_of(response, 503)["code"] == "store-unavailable"
    assert response.headers["retry-after"] == "1"


async def test_healthz_needs_nothing_and_readyz_names_both_failures(
    api: httpx.AsyncClient,
) -> None:
    """/healthz answers with no service; /readyz is 503 and says what failed for each."""
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    response = await api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert set(body["checks"]) == {"redis", "rabbitmq", "read_model"}
    assert body["checks"]["read_model"] == "loading"  # it cannot load without Redis
    del body["checks"]["read_model"]
    assert all(check != "ok" and "Error" in check for check in body["checks"].values())


async def test_metrics_count_by_route_template_and_include_passed_registries() -> None:
    """Series are labelled by route template, not raw path; extra registries are exposed."""
    extra = CollectorRegistry()
    Counter("agentroster_worker_probe_total", "A worker metric.", registry=extra).inc()
    async with serve_api(CLOSED, (extra,), wait_ready=False) as api:
        await api.get("/v1/agents/some-agent")
        await api.get("/v1/agents/Bad_Id")
        await api.get("/not/a/route")
        text = (await api.get("/metrics")).text
    assert 'route="/v1/agents/{agent_id}",status="503"' in text
    assert 'route="/v1/agents/{agent_id}",status="422"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "some-agent" not in text
    assert "agentroster_http_request_duration_seconds_bucket" in text
    assert "agentroster_worker_probe_total 1.0" in text


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/.well-known/agent.json"])
async def test_the_registry_serves_its_own_a2a_card(api: httpx.AsyncClient, path: str) -> None:
    """An A2A card whose skill is discovery, with urls under the API's own address (without a
    public URL configured: the address it listens on); v1.0, or v0.3 at the legacy path."""
    response = await api.get(path)
    assert response.status_code == 200
    card = response.json()
    for field in (
        "name",
        "description",
        "version",
        "capabilities",
        "defaultInputModes",
        "defaultOutputModes",
        "skills",
    ):
        assert field in card
    if path.endswith("agent.json"):
        interface = {"url": card["url"], "protocolBinding": card["preferredTransport"]}
    else:
        interface = card["supportedInterfaces"][0]
    assert interface["url"] == "http://127.0.0.1:8000/v1/agents"
    assert interface["protocolBinding"].startswith("urn:")  # not a core A2A binding
    assert [skill["id"] for skill in card["skills"]] == ["discover-agents"]


async def test_openapi_documents_the_error_shape(api: httpx.AsyncClient) -> None:
    """The documented 422 and 404 are the API's error shape, not FastAPI's default."""
    spec = (await api.get("/openapi.json")).json()
    schema = "#/components/schemas/ErrorResponse"
    listing = spec["paths"]["/v1/agents"]["get"]["responses"]
    assert listing["422"]["content"]["application/json"]["schema"]["$ref"] == schema
    one = spec["paths"]["/v1/agents/{agent_id}"]["get"]["responses"]
    assert one["404"]["content"]["application/json"]["schema"]["$ref"] == schema
    assert "HTTPValidationError" not in spec["components"]["schemas"]


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"sha256:a"', True),
        ('W/"sha256:a"', True),
        ('"x", "sha256:a"', True),
        ("*", True),
        ('"sha256:b"', False),
        ("sha256:a", False),
    ],
)
def test_if_none_match_uses_weak_comparison(header: str, matches: bool) -> None:
    """RFC 9110: If-None-Match compares weakly; a list or `*` may be given."""
    assert etag_matches(header, '"sha256:a"') is matches
