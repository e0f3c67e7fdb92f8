"""HTTP hygiene, with no service running: nosniff everywhere, the registry's card from the
configured public URL (never the Host header), /readyz without addresses, repeated parameters."""

from __future__ import annotations

import pytest

from agentroster.settings import Settings
from tests.helpers import serve_api

CLOSED = Settings(
    redis_url="redis://127.0.0.1:1/0",
    broker_url="amqp://guest:guest@127.0.0.1:1/",
    prefix="unit-hygiene",
)


async def test_every_response_says_nosniff() -> None:
    """200, 404, 405, 410-less 422 and 503 (Redis down) all carry X-Content-Type-Options."""
    async with serve_api(CLOSED, wait_ready=False) as api:
        responses = [
            await api.get("/healthz"),
            await api.get("/openapi.json"),
            await api.get("/no/such/path"),
            await api.post("/healthz"),
            await api.get("/v1/agents", params={"limit": 0}),
            await api.get("/v1/agents"),
            await api.get("/readyz"),
            await api.get("/.well-known/agent-card.json"),
        ]
    assert [r.status_code for r in responses] == [200, 200, 404, 405, 422, 503, 503, 200]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


@pytest.mark.parametrize("path", ["/.well-known/agent-card.json", "/.well-known/agent.json"])
async def test_the_registry_card_comes_from_the_public_url_not_the_host_header(
    path: str,
) -> None:
    """A forged Host header never reaches the card; the configured public URL does."""
    settings = CLOSED.model_copy(update={"public_url": "https://roster.example.com/base"})
    async with serve_api(settings, wait_ready=False) as api:
        card = (await api.get(path, headers={"Host": "evil.example"})).json()
    urls = {i["url"] for i in card.get("supportedInterfaces", [])} | {card.get("url")} - {None}
    assert urls == {"https://roster.example.com/base/v1/agents"}
    assert card["documentationUrl"] == "https://roster.example.com/base/docs"
    assert "evil" not in str(card)


@pytest.mark.parametrize("url", ["ftp://x/", "javascript:alert(1)", "https://a b/", "x"])
def test_a_public_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url=url)


async def test_readyz_hides_dependency_addresses_unless_asked() -> None:
    """Failures are named by kind, not by host:port; a setting shows the addresses."""
    async with serve_api(CLOSED, wait_ready=False) as api:
        hidden = (await api.get("/readyz")).json()["checks"]
    shown_settings = CLOSED.model_copy(update={"readyz_show_addresses": True})
    async with serve_api(shown_settings, wait_ready=False) as api:
        shown = (await api.get("/readyz")).json()["checks"]
    for name in ("redis", "rabbitmq"):
        assert "Error" in hidden[name]
        assert "127.0.0.1" not in hidden[name]
        assert "<address>" in hidden[name]
        assert "127.0.0.1" in shown[name]


@pytest.mark.parametrize(
    ("path", "parameter", "values"),
    [
        ("/v1/agents", "limit", ["5", "1000"]),
        ("/v1/agents", "status", ["live", "all"]),
        ("/v1/agents", "q", ["a"] * 1500),
        ("/v1/events", "since", ["1", "2"]),
    ],
)
async def test_a_single_valued_parameter_given_twice_is_422_naming_it(
    path: str, parameter: str, values: list[str]
) -> None:
    async with serve_api(CLOSED, wait_ready=False) as api:
        response = await api.get(path, params=[(parameter, v) for v in values])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid-request"
    assert error["details"] == [
        {
            "in": "query",
            "parameter": parameter,
            "message": "given more than once; this parameter takes one value",
        }
    ]


async def test_repeatable_parameters_stay_repeatable() -> None:
    """`skill` and `label` repeat (the request then fails only because Redis is down)."""
    async with serve_api(CLOSED, wait_ready=False) as api:
        response = await api.get(
            "/v1/agents",
            params=[("skill", "a"), ("skill", "b"), ("label", "k:v"), ("label", "j:w")],
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store-unavailable"
