"""The schemas of the AsyncAPI documents, rewritten for code generators, mean what pydantic said.

tests/integration/test_generated_clients.py proves the generated clients work; this checks the
rewrite itself: the same values are valid before and after, and a shape it cannot rewrite is
refused when the documents are written, not discovered in a client.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from agentroster.contracts import AgentEvent, Deregister, Heartbeat, Register
from agentroster.specification import DOCUMENTS, default_settings
from agentroster.specification._messages import command_example, event_example
from agentroster.specification._portable import portable_schemas

MODELS: list[type[BaseModel]] = [AgentEvent, Register, Heartbeat, Deregister]


def portable(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model's JSON schema as pydantic writes it, and as the documents write it."""
    original = model.model_json_schema()
    rewritten = copy.deepcopy(original)
    portable_schemas({"$defs": rewritten.get("$defs", {}), "root": rewritten})
    return original, rewritten


def nodes(node: Any) -> list[dict[str, Any]]:
    """Every object in a schema tree, examples excepted."""
    if isinstance(node, list):
        return [found for item in node for found in nodes(item)]
    if not isinstance(node, dict):
        return []
    found = [node]
    for key, value in node.items():
        if key not in ("examples", "default", "enum", "const"):
            found += nodes(value)
    return found


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_have_no_shape_generators_mistake(name: str) -> None:
    """No nullable anyOf (a wrapper type in Go), no const (a syntax error in Python's
    pydantic models), no array or object default (`tags = ;` in Java)."""
    schemas = DOCUMENTS[name](default_settings())["components"]["schemas"]
    for node in nodes(schemas):
        assert {"type": "null"} not in node.get("anyOf", []), node
        assert "const" not in node, node
        assert not isinstance(node.get("default"), list | dict), node


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_integers_that_outgrow_32_bits_are_int64(name: str) -> None:
    schemas = DOCUMENTS[name](default_settings())["components"]["schemas"]
    assert schemas["AgentEvent"]["properties"]["revision"]["format"] == "int64"
    for command in ("Register", "Heartbeat", "Deregister"):
        assert schemas[command]["properties"]["seq"]["format"] == "int64"


def samples(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Valid and invalid bodies, nulls included, around the documents' examples."""
    if model is AgentEvent:
        base = event_example("joined")
        changes: list[dict[str, Any]] = [
            {"card": None, "verified": None},
            {"verified": True, "revision": 2**40},
            {"verified": "yes"},
            {"card": []},
            {"revision": "1"},
            {"agent": {**base["agent"], "endpoints": [{"transport": "http", "url": None}]}},
        ]
    else:
        kind = {Register: "register", Heartbeat: "heartbeat", Deregister: "deregister"}[model]
        base = command_example(kind)  # type: ignore[arg-type]
        changes = [
            {"seq": 2**53 - 1},
            {"seq": 2**53},
            {"interval_s": None, "idle_ttl_s": None, "endpoints": None, "labels": None},
            {"interval_s": -1},
            {"endpoints": [{"transport": "amqp", "exchange": None, "routing_key": "q"}]},
            {"labels": {"a:b": "c"}},
        ]
    return [base, *({**base, **change} for change in changes)]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_rewritten_schemas_accept_and_refuse_the_same_bodies(model: type[BaseModel]) -> None:
    original, rewritten = portable(model)
    before, after = Draft202012Validator(original), Draft202012Validator(rewritten)
    verdicts = [(before.is_valid(body), after.is_valid(body)) for body in samples(model)]
    assert all(was == now for was, now in verdicts), verdicts
    assert {was for was, _ in verdicts} == {True, False}  # the samples test both ways


def test_const_becomes_a_one_value_enum_and_a_list_default_goes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "v": {"type": "string", "const": "1.0"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "reason": {"type": "string", "default": "shutdown"},
        },
    }
    portable_schemas({"S": schema})
    assert schema["properties"] == {
        "v": {"type": "string", "enum": ["1.0"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string", "default": "shutdown"},
    }


class _NullableRef(BaseModel):
    event: AgentEvent | None = None


class _NullableEnum(BaseModel):
    signature: Literal["valid", "invalid"] | None = None


class _Union(BaseModel):
    value: int | str | None = None


@pytest.mark.parametrize("model", [_NullableRef, _NullableEnum, _Union], ids=lambda m: m.__name__)
def test_a_nullable_shape_generators_cannot_take_is_refused_with_its_place(
    model: type[BaseModel],
) -> None:
    """A new contract field of this shape fails `agentroster asyncapi`, naming the field."""
    schema = model.model_json_schema()
    with pytest.raises(ValueError, match=f"{model.__name__}/properties/"):
        portable_schemas({model.__name__: schema})
