"""The registry's own A2A card at its two well-known paths, with no service running: each path in
the version its clients expect, `A2A-Version` (header or parameter) negotiated by Major.Minor,
an ETag and 304, checked with the a2a SDK and the official v0.3 JSON schema."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from a2a.client.card_resolver import A2ACardResolver
from a2a.compat.v0_3 import types as v03
from a2a.types import AgentCard
from google.protobuf.json_format import ParseDict

from agentroster.settings import Settings
from tests.a2a_schemas import v03_card_validator
from tests.helpers import serve_api

CLOSED = Settings(
    redis_url="redis://127.0.0.1:1/0",
    broker_url="amqp://guest:guest@127.0.0.1:1/",
    prefix="unit-registry-card",
    public_url="https://roster.example.com/",
)
CURRENT = "/.well-known/agent-card.json"
LEGACY = "/.well-known/agent.json"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(CLOSED, wait_ready=False) as client:
        yield client


def parse_v10(body: bytes) -> AgentCard:
    """Strictly, with the SDK: a field it does not know is an error."""
    card = AgentCard()
    ParseDict(orjson.loads(body), card)
    return card


async def test_agent_card_json_is_v10_and_parses_strictly_with_the_sdk(
    api: httpx.AsyncClient,
) -> None:
    """The current path: a v1.0 card whose discovery interface is offered for 1.0 and 0.3."""
    response = await api.get(CURRENT)
    assert response.status_code == 200, response.text
    card = parse_v10(response.content)
    assert [(i.url, i.protocol_version) for i in card.supported_interfaces] == [
        ("https://roster.example.com/v1/agents", "1.0"),
        ("https://roster.example.com/v1/agents", "0.3"),
    ]
    assert response.headers["vary"] == "A2A-Version"


async def test_agent_json_is_v03_for_clients_before_1_0(api: httpx.AsyncClient) -> None:
    """The legacy path: a v0.3 card, valid under the official v0.3.0 schema and the SDK's
    v0.3 model, its one url speaking 0.3."""
    response = await api.get(LEGACY)
    assert response.status_code == 200, response.text
    card = orjson.loads(response.content)
    v03_card_validator().validate(card)
    model = v03.AgentCard.model_validate(card)
    assert model.url == "https://roster.example.com/v1/agents"
    assert model.protocol_version == "0.3"
    assert model.additional_interfaces is None
    assert "supportedInterfaces" not in card


@pytest.mark.parametrize(
    ("path", "version", "expected"),
    [
        (CURRENT, "0.3", LEGACY),
        (CURRENT, "0.3.5", LEGACY),
        (LEGACY, "1.0", CURRENT),
        (LEGACY, "1.0.1", CURRENT),
        (CURRENT, "1.0.0", CURRENT),
        (CURRENT, "", CURRENT),
    ],
)
async def test_a2a_version_picks_the_version_by_major_minor(
    api: httpx.AsyncClient, path: str, version: str, expected: str
) -> None:
    """Header or query parameter, the patch ignored: the same bytes and ETag as the path that
    serves that version by default."""
    reference = await api.get(expected)
    by_header = await api.get(path, headers={"A2A-Version": version})
    by_parameter = await api.get(path, params={"A2A-Version": version})
    for response in (by_header, by_parameter):
        assert response.status_code == 200, response.text
        assert response.content == reference.content
        assert response.headers["etag"] == reference.headers["etag"]


async def test_each_version_has_its_etag_and_if_none_match_gives_304(
    api: httpx.AsyncClient,
) -> None:
    current, legacy = await api.get(CURRENT), await api.get(LEGACY)
    assert current.headers["etag"] != legacy.headers["etag"]
    for response in (current, legacy):  # the SHA-256 of the bytes served, quoted
        assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    assert current.headers["cache-control"] == "max-age=300"

    cached = await api.get(CURRENT, headers={"If-None-Match": current.headers["etag"]})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == current.headers["etag"]
    weak = await api.get(CURRENT, headers={"If-None-Match": f"W/{current.headers['etag']}"})
    assert weak.status_code == 304
    other = await api.get(CURRENT, headers={"If-None-Match": legacy.headers["etag"]})
    assert other.status_code == 200
    assert other.content == current.content


async def test_the_sdk_resolver_reads_both_paths(api: httpx.AsyncClient) -> None:
    """a2a-sdk 1.x resolves the card at its default path and reads the legacy one too."""
    resolver = A2ACardResolver(api, str(api.base_url))
    current = await resolver.get_agent_card()
    legacy = await resolver.get_agent_card(relative_card_path=LEGACY)
    assert current.name == legacy.name == "agentroster"
    assert {i.url for i in legacy.supported_interfaces} == {"https://roster.example.com/v1/agents"}


@pytest.mark.parametrize("version", ["1.1", "2.0", "0.2", "0.5.1"])
async def test_a_version_not_served_is_400_version_not_supported(
    api: httpx.AsyncClient, version: str
) -> None:
    """As the spec's VersionNotSupportedError (HTTP 400), naming the versions served."""
    for response in (
        await api.get(CURRENT, headers={"A2A-Version": version}),
        await api.get(LEGACY, params={"A2A-Version": version}),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "version-not-supported"
        assert error["details"] == {
            "requested": ".".join(version.split(".")[:2]),
            "supported": ["0.3", "1.0"],
        }


@pytest.mark.parametrize("value", ["latest", "1", "v1.0", "1.0;q=1", "9" * 4000, "1.0\x00"])
async def test_a_value_that_is_no_version_is_422_and_not_echoed(
    api: httpx.AsyncClient, value: str
) -> None:
    """A hostile or broken value: refused naming the parameter, the value not echoed back."""
    response = await api.get(CURRENT, params={"A2A-Version": value})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid-request"
    assert error["details"][0]["in"] == "query"
    assert error["details"][0]["parameter"] == "A2A-Version"
    assert repr(value) not in response.text


async def test_header_and_parameter_that_disagree_or_a_repeated_parameter_are_422(
    api: httpx.AsyncClient,
) -> None:
    disagree = await api.get(CURRENT, headers={"A2A-Version": "1.0"}, params={"A2A-Version": "0.3"})
    assert disagree.status_code == 422, disagree.text
    assert disagree.json()["error"]["details"][0]["parameter"] == "A2A-Version"
    agree = await api.get(CURRENT, headers={"A2A-Version": "0.3"}, params={"A2A-Version": "0.3.0"})
    assert agree.status_code == 200
    repeated = await api.get(f"{CURRENT}?A2A-Version=1.0&A2A-Version=0.3")
    assert repeated.status_code == 422, repeated.text
