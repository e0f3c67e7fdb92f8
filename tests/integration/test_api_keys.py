"""API keys on the real Redis: the store, the operator CLI, the admin endpoints, revocation
across two API processes, discovery behind a key, rate limits per key."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from agentroster.settings import Settings
from agentroster.store.api_keys import KeyStore
from tests.helpers import registry_server, serve_api

BOOTSTRAP_KEY = "integration-bootstrap-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_keys(settings: Settings, **overrides: Any) -> Settings:
    """The test registry's settings with the bootstrap key (and `overrides`)."""
    return Settings(**{**settings.model_dump(), "bootstrap_admin_key": BOOTSTRAP_KEY, **overrides})


async def keys_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`agentroster keys ...` against the test registry's Redis, in a subprocess."""
    env = {
        **os.environ,
        "AGENTROSTER_REDIS_URL": settings.redis_url,
        "AGENTROSTER_PREFIX": settings.prefix,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agentroster", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_store_keeps_the_digest_under_the_registry_prefix(
    settings: Settings, cleanup: None
) -> None:
    """Records live under `{prefix}:apikey:<id>` (the registry's hash tag) with the SHA-256 of
    the secret: the secret is nowhere in Redis. Revoked keys stay listed with their time."""
    redis = Redis.from_url(settings.redis_url)
    try:
        store = KeyStore(redis, settings.prefix)
        created = await store.create("weather-team", "agent", ["weather-*"], "the weather agents")
        secret = created.token.split("_", 2)[2]
        stored = await redis.hgetall(f"{{{settings.prefix}}}:apikey:{created.record.key_id}")
        assert secret not in repr(stored)
        assert stored[b"principal"] == b"weather-team"
        assert stored[b"scope"] == b"agent"
        assert await store.get(created.record.key_id) == created.record
        second = await store.create("weather-team", "read")
        page, cursor = await store.page(limit=1)
        assert len(page) == 1
        assert cursor == page[0].key_id
        rest, end = await store.page(limit=10, after=cursor)
        assert end is None
        assert {r.key_id for r in [*page, *rest]} == {created.record.key_id, second.record.key_id}
        revoked = await store.revoke(created.record.key_id)
        assert revoked is not None
        assert revoked.revoked
        again = await store.revoke(created.record.key_id)
        assert again is not None
        assert again.revoked_at == revoked.revoked_at
        assert await store.revoke("0123456789abcdef") is None
        assert await redis.exists(f"{{{settings.prefix}}}:apikey:0123456789abcdef") == 0
    finally:
        await redis.aclose()


async def test_the_operator_creates_lists_and_revokes_keys_with_the_cli(
    settings: Settings, cleanup: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The token is printed once by `create`; `list` shows ids and never a secret; a revoked
    key is refused by the API."""
    made = await keys_cli(
        settings, "create", "--principal", "weather-team", "--scope", "agent",
        "--agent", "weather-*", "--agent", "forecast", "--description", "weather", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = orjson.loads(made.stdout)
    token, key_id = created["token"], created["key_id"]
    assert token.startswith(f"ar_{key_id}_")
    assert created["agent_patterns"] == ["weather-*", "forecast"]
    plain = await keys_cli(settings, "create", "--principal", "dash", "--scope", "read")
    assert plain.returncode == 0
    assert "token:  ar_" in plain.stdout

    listed = await keys_cli(settings, "list", "--json")
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert {row["principal"] for row in rows} == {"weather-team", "dash"}
    table = await keys_cli(settings, "list")
    assert key_id in table.stdout
    assert "weather-*,forecast" in table.stdout
    for output in (listed, table):
        assert token not in output.stdout + output.stderr
        assert token.split("_", 2)[2] not in output.stdout + output.stderr
        assert "sha256" not in output.stdout

    with caplog.at_level(logging.DEBUG):
        async with serve_api(with_keys(settings)) as api:
            assert (await api.get("/v1/keys", headers=bearer(token))).status_code == 403
            revoked = await keys_cli(settings, "revoke", key_id)
            assert revoked.returncode == 0
            assert "revoked at" in revoked.stdout

            async def refused() -> None:
                while (await api.get("/v1/keys", headers=bearer(token))).status_code != 401:
                    await asyncio.sleep(0.05)  # polling an endpoint that has no event to await

            await asyncio.wait_for(refused(), 5)
    assert token.split("_", 2)[2] not in caplog.text

    bad = await keys_cli(settings, "create", "--principal", "x", "--scope", "agent")
    assert bad.returncode == 2
    assert "at least one" in bad.stderr
    unknown = await keys_cli(settings, "revoke", "0123456789abcdef")
    assert unknown.returncode == 1
    assert "no API key" in unknown.stderr


async def test_an_admin_manages_keys_over_http_and_secrets_never_reach_logs(
    settings: Settings, cleanup: None, caplog: pytest.LogCaptureFixture
) -> None:
    """POST answers the token once (no-store); GET lists and reads without secrets; DELETE
    revokes; a non-admin key is 403 on every key endpoint; nothing logged holds a secret."""
    with caplog.at_level(logging.DEBUG):
        async with serve_api(with_keys(settings)) as api:
            made = await api.post(
                "/v1/keys",
                headers=ADMIN,
                json={"principal": "weather-team", "scope": "agent", "agent_patterns": ["w-*"]},
            )
            assert made.status_code == 201, made.text
            assert made.headers["Cache-Control"] == "no-store"
            token, key_id = made.json()["token"], made.json()["key_id"]
            admin = await api.post(
                "/v1/keys", headers=ADMIN, json={"principal": "ops", "scope": "admin"}
            )
            admin_token = admin.json()["token"]

            listed = await api.get("/v1/keys", headers=bearer(admin_token))
            assert listed.status_code == 200
            assert {k["key_id"] for k in listed.json()["keys"]} >= {key_id}
            one = await api.get(f"/v1/keys/{key_id}", headers=ADMIN)
            assert one.json()["principal"] == "weather-team"
            assert one.json()["revoked"] is False
            for response in (listed, one):
                assert "token" not in response.text
                assert "sha256" not in response.text
                assert token.split("_", 2)[2] not in response.text

            for method, path in (
                ("GET", "/v1/keys"),
                ("GET", f"/v1/keys/{key_id}"),
                ("DELETE", f"/v1/keys/{key_id}"),
                ("POST", "/v1/keys"),
            ):
                body = {"principal": "me", "scope": "admin"} if method == "POST" else None
                answer = await api.request(method, path, headers=bearer(token), json=body)
                assert answer.status_code == 403, (method, path)
                assert answer.json()["error"]["details"]["needs_scope"] == "admin"

            invalid = await api.post(
                "/v1/keys", headers=ADMIN, json={"principal": "x", "scope": "agent"}
            )
            assert invalid.status_code == 422
            assert invalid.json()["error"]["code"] == "invalid-key"
            hostile = await api.post(
                "/v1/keys",
                headers=ADMIN,
                json={"principal": "x\ny", "scope": "agent", "agent_patterns": ["*"], "x": 1},
            )
            assert hostile.status_code == 422
            assert (await api.get("/v1/keys/0123456789abcdef", headers=ADMIN)).status_code == 404
            assert (await api.get("/v1/keys/..%2F..", headers=ADMIN)).status_code in (404, 422)

            gone = await api.delete(f"/v1/keys/{key_id}", headers=ADMIN)
            assert gone.status_code == 200
            assert gone.json()["revoked"] is True

            async def refused() -> None:
                while (await api.get("/v1/keys", headers=bearer(token))).status_code != 401:
                    await asyncio.sleep(0.05)  # polling an endpoint that has no event to await

            await asyncio.wait_for(refused(), 5)
    for secret in (token.split("_", 2)[2], admin_token.split("_", 2)[2], BOOTSTRAP_KEY):
        assert secret not in caplog.text
    assert f"API key {key_id} created" in caplog.text  # the audit line names the id


async def test_a_revoked_key_is_refused_by_two_api_processes_within_a_second(
    settings: Settings, cleanup: None
) -> None:
    """Two `agentroster up` processes share nothing but Redis: after a revocation answered by
    one, both refuse the key within 1 s (KEY_CACHE_S is 0.5 s), with no message between them."""
    env = {
        "AGENTROSTER_BOOTSTRAP_ADMIN_KEY": BOOTSTRAP_KEY,
        "AGENTROSTER_READ_REQUIRES_KEY": "true",
    }
    async with (
        registry_server(settings, **env) as one,
        registry_server(settings, **env) as two,
        httpx.AsyncClient(base_url=one.url) as first,
        httpx.AsyncClient(base_url=two.url) as second,
    ):
        made = await first.post(
            "/v1/keys", headers=ADMIN, json={"principal": "dash", "scope": "read"}
        )
        token = made.json()["token"]
        for api in (first, second):
            assert (await api.get("/v1/agents", headers=bearer(token))).status_code == 200
        assert (await first.delete(f"/v1/keys/{made.json()['key_id']}", headers=ADMIN)).is_success
        revoked_at = time.monotonic()

        async def refused_by(api: httpx.AsyncClient) -> float:
            while (await api.get("/v1/agents", headers=bearer(token))).status_code != 401:
                await asyncio.sleep(0.02)  # polling an endpoint that has no event to await
            return time.monotonic() - revoked_at

        async with asyncio.timeout(1.0):  # the claim: refused everywhere within a second
            await asyncio.gather(refused_by(first), refused_by(second))


async def test_a_private_registry_needs_a_key_to_read_and_keeps_health_open(
    settings: Settings, cleanup: None
) -> None:
    """read_requires_key: discovery is 401 without a key, 200 with a read key (Bearer or the
    password of Basic); health, metrics and the registry's card stay open."""
    async with serve_api(with_keys(settings, read_requires_key=True)) as api:
        made = await api.post("/v1/keys", headers=ADMIN, json={"principal": "d", "scope": "read"})
        token = made.json()["token"]
        for path in ("/v1/agents", "/.well-known/agents", "/v1/agents/nobody"):
            response = await api.get(path)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="agentroster"'
        assert (await api.get("/v1/agents", headers=bearer(token))).status_code == 200
        assert (await api.get("/.well-known/agents", auth=("anyone", token))).status_code == 200
        assert (await api.get("/v1/agents/nobody", headers=bearer(token))).status_code == 404
        for path in ("/healthz", "/readyz", "/metrics", "/.well-known/agent-card.json"):
            assert (await api.get(path)).status_code == 200, path


async def test_one_greedy_key_is_rate_limited_while_another_key_passes(
    settings: Settings, cleanup: None
) -> None:
    """Over its burst a key gets 429 rate-limited with Retry-After; another key's requests in
    the same moment pass (buckets per key, per API process)."""
    limited = with_keys(settings, read_requires_key=True, key_rate_per_s=0.01, key_rate_burst=3)
    async with serve_api(limited) as api:
        tokens = []
        for name in ("greedy", "modest"):
            made = await api.post(
                "/v1/keys", headers=ADMIN, json={"principal": name, "scope": "read"}
            )
            tokens.append(made.json()["token"])
        greedy, modest = tokens
        answers = await asyncio.gather(
            *(api.get("/v1/agents", headers=bearer(greedy)) for _ in range(6))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 200, 429, 429, 429]
        over = next(a for a in answers if a.status_code == 429)
        assert over.json()["error"]["code"] == "rate-limited"
        assert int(over.headers["Retry-After"]) >= 1
        assert (await api.get("/v1/agents", headers=bearer(modest))).status_code == 200


async def test_a_client_hammering_bad_keys_is_cut_off_and_valid_traffic_goes_on(
    settings: Settings, cleanup: None
) -> None:
    """Unknown well-formed keys cost a Redis read each until the client's failure allowance
    is spent; then 429 before any read. A valid key's requests pass the whole time."""
    async with serve_api(with_keys(settings, read_requires_key=True)) as api:
        made = await api.post("/v1/keys", headers=ADMIN, json={"principal": "d", "scope": "read"})
        good = made.json()["token"]
        assert (await api.get("/v1/agents", headers=bearer(good))).status_code == 200
        statuses = []
        for _ in range(40):
            forged = f"ar_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
            statuses.append((await api.get("/v1/agents", headers=bearer(forged))).status_code)
            assert (await api.get("/v1/agents", headers=bearer(good))).status_code == 200
        assert statuses[0] == 401
        assert statuses[-1] == 429
        assert set(statuses) == {401, 429}
