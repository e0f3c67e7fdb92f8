"""Snapshots of the JSON schemas of every contract model: a wire change is always visible.

A failing test here means a command, event or endpoint changed shape. If it is deliberate,
regenerate the snapshots (`AGENTROSTER_UPDATE_SNAPSHOTS=1 scripts/test <this file>`),
add a "Contracts" line to CHANGELOG.md, and regenerate `asyncapi/` (`agentroster asyncapi`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentroster.contracts import (
    AgentEvent,
    AgentView,
    Deregister,
    Endpoint,
    Heartbeat,
    Register,
    Skill,
    card_digest,
)

MODELS: list[type[BaseModel]] = [
    AgentEvent,
    AgentView,
    Deregister,
    Endpoint,
    Heartbeat,
    Register,
    Skill,
]
SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_json_schema_matches_its_snapshot(model: type[BaseModel]) -> None:
    """The model's JSON schema (validation mode) equals the committed snapshot."""
    schema = json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
    snapshot = SNAPSHOTS / f"{model.__name__}.schema.json"
    if os.environ.get("AGENTROSTER_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(schema)
    assert snapshot.exists(), f"no snapshot for {model.__name__}: see this module's docstring"
    assert schema == snapshot.read_text(), f"{model.__name__} changed shape: see the docstring"


def test_every_contract_model_has_a_snapshot() -> None:
    """A new pydantic model in contracts/ gets a snapshot too."""
    import agentroster.contracts as contracts

    exported = {
        name
        for name in contracts.__all__
        if isinstance(getattr(contracts, name), type)
        and issubclass(getattr(contracts, name), BaseModel)
    }
    assert exported == {m.__name__ for m in MODELS}


def test_card_digest_is_computed_as_the_heartbeat_schema_says() -> None:
    """`Heartbeat.card_digest`'s description is how other languages compute it: it must hold.

    Python's json module with sorted keys, no whitespace and no ASCII escaping writes the same
    bytes as orjson with `OPT_SORT_KEYS` (keys sorted by code point: `\ue000` before an emoji,
    which UTF-16 order would put first).
    """
    card = {
        "name": "Météo",
        "skills": [{"tags": ["b", "a"], "id": "x"}],
        "\U0001f600": 1,
        "\ue000": 2,
        "capabilities": {"streaming": False, "n": 1.5, "none": None},
    }
    canonical = json.dumps(card, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert card_digest(card) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    description = Heartbeat.model_fields["card_digest"].description or ""
    for said in ("`sha256:`", "lowercase hex SHA-256", "compact UTF-8 JSON", "Unicode code point"):
        assert said in description
