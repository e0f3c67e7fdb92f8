"""The official A2A JSON schemas vendored for tests (README.md says their source and licence)."""

from __future__ import annotations

import functools
from pathlib import Path

import orjson
from jsonschema import Draft7Validator

V03_SCHEMA_FILE = Path(__file__).with_name("a2a-v0.3.0.json")


@functools.cache
def v03_card_validator() -> Draft7Validator:
    """A validator of the A2A v0.3.0 schema's `AgentCard` (draft-07, as the schema declares)."""
    schema = orjson.loads(V03_SCHEMA_FILE.read_bytes())
    card = {**schema["definitions"]["AgentCard"], "definitions": schema["definitions"]}
    return Draft7Validator(card)
