"""Keys over HTTP with Redis unreachable: hostile Authorization headers, the bootstrap key,
discovery behind `read_requires_key`, failing closed. Every refusal is in the one error shape."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentroster.settings import Settings
from agentroster.store.api_keys import new_token
from tests.helpers import serve_api
from tests.unit.test_api_errors import CLOSED, error_of

BOOTSTRAP_KEY = "bootstrap-key-for-unit-tests-0123456789"
PRIVATE = Settings(
    **{**CLOSED.model_dump(), "read_requires_key": True, "bootstrap_admin_key": BOOTSTRAP_KEY}
)
CHALLENGE = 'Bearer realm="agentroster"'


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(PRIVATE, wait_ready=False) as client:
        yield client


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def refused(response: httpx.Response) -> dict[str, Any]:
    error = error_of(response, 401)
    assert error["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    return error


HOSTILE: list[tuple[str, bytes]] = [
    ("huge", b"Bearer " + b"a" * 20_000),
    ("non-ascii", "Bearer ar_0123456789abcdef_ä€".encode()),
    ("latin-1", b"Bearer \xff\xfe" + b"a" * 50),
    ("malformed base64", b"Basic !!!not-base64!!!"),
    ("base64 of non-UTF-8", b"Basic " + base64.b64encode(b"user:\xff\xfe")),
    ("basic without password", b"Basic " + base64.b64encode(b"just-a-user")),
    ("wrong scheme", b"Digest username=agent"),
    ("token scheme", b"Token ar_0123456789abcdef_" + b"a" * 43),
    ("bearer alone", b"Bearer"),
    ("bearer blank", b"Bearer    "),
    ("not a token", b"Bearer hunter2"),
    ("control characters", b"Bearer ar_0123456789abcdef_" + b"\x01" * 43),
]


@pytest.mark.parametrize(("name", "header"), HOSTILE, ids=[name for name, _ in HOSTILE])
async def test_hostile_authorization_headers_are_401_without_touching_redis(
    api: httpx.AsyncClient, name: str, header: bytes
) -> None:
    """Refused by their shape (Redis is down: any read would be a 503), the header never echoed."""
    response = await api.get("/v1/agents", headers={b"Authorization": header})
    refused(response)
    if len(header) > 20:
        assert header[7:].decode("latin-1") not in response.text


async def test_discovery_without_a_key_is_401_and_health_stays_open(
    api: httpx.AsyncClient,
) -> None:
    """read_requires_key: every discovery route asks for a key; health and the card do not."""
    for path in (
        "/v1/agents",
        "/v1/agents/weather",
        "/v1/agents/weather/card",
        "/v1/events",
        "/.well-known/agents",
    ):
        refused(await api.get(path))
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/readyz")).status_code == 503  # open, only not ready without Redis
    assert (await api.get("/metrics")).status_code == 200
    assert (await api.get("/.well-known/agent-card.json")).status_code == 200


async def test_a_well_formed_key_with_redis_down_is_503_never_accepted(
    api: httpx.AsyncClient,
) -> None:
    """Fail closed: a key that must be read while Redis is down is 503 with Retry-After."""
    response = await api.get("/v1/keys", headers={"Authorization": f"Bearer {new_token()[2]}"})
    error = error_of(response, 503)
    assert error["code"] == "store-unavailable"
    assert response.headers["Retry-After"] == "1"


async def test_the_bootstrap_key_is_admin_as_bearer_and_as_basic_password(
    api: httpx.AsyncClient,
) -> None:
    """Accepted without Redis (then listing keys needs Redis: 503, not 401)."""
    for header in (f"Bearer {BOOTSTRAP_KEY}", basic("admin", BOOTSTRAP_KEY)):
        response = await api.get("/v1/keys", headers={"Authorization": header})
        assert error_of(response, 503)["code"] == "store-unavailable"
    refused(await api.get("/v1/keys", headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}x"}))


async def test_key_endpoints_without_a_key_are_401(api: httpx.AsyncClient) -> None:
    """Each admin endpoint asks for a key before anything else."""
    refused(await api.get("/v1/keys"))
    refused(await api.get("/v1/keys/0123456789abcdef"))
    refused(await api.delete("/v1/keys/0123456789abcdef"))
    refused(await api.post("/v1/keys", json={"principal": "p", "scope": "read"}))


async def test_without_read_requires_key_a_bad_key_on_discovery_is_not_looked_at() -> None:
    """An open registry ignores keys on reads (a key costs nothing where none is needed)."""
    async with serve_api(CLOSED, wait_ready=False) as client:
        response = await client.get(
            "/.well-known/agents", headers={"Authorization": "Digest whatever"}
        )
        assert response.status_code == 503  # Redis is down; the header was not judged
        assert error_of(response, 503)["code"] == "store-unavailable"


def test_the_openapi_document_names_the_refusals() -> None:
    """401 (with WWW-Authenticate), 403 and 429 on the key endpoints; 401 on discovery."""
    from agentroster.api import create_api

    paths = create_api(PRIVATE).openapi()["paths"]
    for method in ("get", "post"):
        assert {"401", "403", "429", "422"} <= set(paths["/v1/keys"][method]["responses"])
    assert "WWW-Authenticate" in paths["/v1/keys"]["get"]["responses"]["401"]["headers"]
    assert {"401", "429"} <= set(paths["/v1/agents"]["get"]["responses"])
    assert "401" in paths["/.well-known/agents"]["get"]["responses"]
    assert "401" not in paths["/healthz"]["get"]["responses"]
