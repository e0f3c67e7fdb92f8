"""Snapshots of the JSON schemas of every contract model: a wire change is always visible.

A failing test here means a command, event or endpoint changed shape. If it is deliberate,
regenerate the snapshots (`AGENTROSTER_UPDATE_SNAPSHOTS=1 scripts/test <this file>`),
add a "Contracts" line to CHANGELOG.md, and regenerate `asyncapi/` (`agentroster asyncapi`).
"""

from __future__ import annotations

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
