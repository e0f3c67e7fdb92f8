"""HTTP writes with the registry's least-privilege broker user (`grant-registry`)."""

from __future__ import annotations

from pydantic import SecretStr

from agentroster.settings import Settings
from agentroster.worker import create_worker
from tests.helpers import serve_api
from tests.integration.agents import a2a_card
from tests.integration.broker_users import Admin

KEY = "k" * 40


async def test_a_registry_with_exactly_its_grant_answers_a_waiting_http_write(
    settings: Settings, cleanup: None, admin: Admin
) -> None:
    """Worker and API as the registry's user: the command is applied and the reply (through
    the default exchange, to the gateway's direct reply-to) arrives: 200 applied."""
    registry = admin.grant("grant-registry", "registry", settings.prefix)
    own = settings.model_copy(
        update={"broker_url": registry.url, "bootstrap_admin_key": SecretStr(KEY)}
    )
    async with create_worker(own), serve_api(own) as api:
        response = await api.put(
            "/v1/agents/granted/instances/one",
            json={"card": a2a_card("granted")},
            params={"wait": "true"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "applied"
