"""The read API builds its agent JSON with orjson: the same bytes pydantic's models give.

`GET /v1/agents` and `GET /v1/agents/{id}` skip pydantic for speed (bench/README.md,
Discovery); `response_model` still documents them. These pin that the shortcut writes what
`AgentSummary.from_record` and `AgentDetail.from_detail` would have, for stored views as the
worker writes them and for views it would never write.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agentroster.api.models import AgentDetail, AgentSummary, detail_json, summary_json
from agentroster.contracts import agent_view
from agentroster.store.reader import StoredAgent, StoredAgentDetail, StoredInstance

CARD: dict[str, Any] = {
    "name": "Météo ☂",
    "description": "Forecasts by city",
    "version": "1.2.0",
    "supportedInterfaces": [
        {
            "url": "https://weather.example/a2a",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "1.0",
        }
    ],
    "capabilities": {},
    "defaultInputModes": ["text/plain"],
    "defaultOutputModes": ["application/json"],
    "skills": [
        {"id": "forecast", "name": "Forecast", "description": "", "tags": ["weather", "géo"]}
    ],
}
STORED_VIEW = orjson.loads(agent_view(CARD, None, None).model_dump_json())

VIEWS = {
    "as the worker stores it": STORED_VIEW,
    "a field a newer worker added": {**STORED_VIEW, "icon": "https://weather.example/i.png"},
    "a field missing": {k: v for k, v in STORED_VIEW.items() if k != "labels"},
    "invalid": {**STORED_VIEW, "skills": "not a list"},
    "absent or unreadable": {},
}


def record(view: dict[str, Any], **times: Any) -> StoredAgentDetail:
    fields: dict[str, Any] = {
        "agent_id": "weather",
        "status": "live",
        "revision": 41,
        "digest": "sha256:" + "ab" * 32,
        "view": view,
        "first_seen_ms": 1_746_090_000_000,
        "last_seen_ms": 1_746_091_810_123,
        "ttl_ms": 30_000,
        "interval_ms": 10_000,
        "idle_ttl_ms": 0,
        "live_instances": 2,
        "instances": (
            StoredInstance("weather-1", 1_746_091_840_001, 1_746_090_000_000, 1_746_091_810_123),
            StoredInstance("weather-2", 0, None, None),
        ),
        "registry_revision": 57,
    }
    fields.update(times)
    return StoredAgentDetail(**fields)


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
@pytest.mark.parametrize(
    "times",
    [{}, {"first_seen_ms": None, "last_seen_ms": None, "interval_ms": 0, "idle_ttl_ms": 2_500}],
    ids=["set", "unset"],
)
def test_orjson_bodies_equal_the_pydantic_models(view: dict[str, Any], times: Any) -> None:
    detail = record(view, **times)
    summary = StoredAgent(**{f: getattr(detail, f) for f in StoredAgent.__dataclass_fields__})
    options = orjson.OPT_UTC_Z
    if view is VIEWS["invalid"]:
        # a view with exactly the view's fields is trusted: the worker wrote it validated
        assert summary_json(summary)["agent"] == view
        assert detail_json(detail)["agent"] == view
        return
    assert orjson.dumps(detail_json(detail), option=options) == (
        AgentDetail.from_detail(detail).model_dump_json().encode()
    )
    assert orjson.dumps(summary_json(summary), option=options) == (
        AgentSummary.from_record(summary).model_dump_json().encode()
    )
