"""The AsyncAPI documents in asyncapi/: up to date, complete enough to generate a client from.

No services: the documents are generated from FastStream declarations that never connect.
CI also validates them with the official parser (scripts/validate-asyncapi).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from typer.testing import CliRunner

from agentroster.cli import app
from agentroster.contracts import (
    CE_HEADERS,
    COMMAND_KINDS,
    COMMAND_MODELS,
    EVENT_KINDS,
    AgentEvent,
    AgentView,
    Endpoint,
    Skill,
    Topology,
)
from agentroster.contracts.gateway import HEARTBEAT_BATCH_TYPE, HeartbeatBatch
from agentroster.settings import Settings
from agentroster.specification import (
    DOCUMENTS,
    PREFIX_EXTENSION,
    default_settings,
    render_yaml,
)
from agentroster.specification._complete import COMPONENT_KEY, check
from agentroster.specification._messages import REVISION_PATTERN
from agentroster.worker import Worker, create_worker

NAMES = Topology()


@pytest.fixture
def committed(repo_root: Path) -> dict[str, dict[str, Any]]:
    """The committed documents, parsed."""
    return {name: yaml.safe_load((repo_root / "asyncapi" / name).read_text()) for name in DOCUMENTS}


@pytest.fixture
def registry(committed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return committed["registry.yaml"]


@pytest.fixture
def agent(committed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return committed["agent.yaml"]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> Any:
    """Follow a local `$ref` (or return the node when it is not one)."""
    if "$ref" not in node:
        return node
    found: Any = doc
    for part in node["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    return found


def exchange_of(channel: dict[str, Any]) -> dict[str, Any]:
    """A routing-key channel's exchange, or the exchange a queue channel is bound to."""
    amqp = channel["bindings"]["amqp"]
    exchange: dict[str, Any] = (
        amqp["exchange"] if amqp["is"] == "routingKey" else amqp["x-exchange"]
    )
    return exchange


def messages_of(doc: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The message objects an operation sends or receives."""
    return [resolve(doc, resolve(doc, ref)) for ref in operation["messages"]]


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Validates against a schema of the document, its `$ref`s resolved in the document."""
    return Draft202012Validator({**schema, "components": doc["components"]})


# --- up to date, stable ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_committed_documents_are_regenerated_unchanged(repo_root: Path, name: str) -> None:
    """The same check as CI: `agentroster asyncapi` would write exactly the committed file."""
    committed = (repo_root / "asyncapi" / name).read_text()
    assert render_yaml(DOCUMENTS[name](default_settings())) == committed, (
        f"asyncapi/{name} is stale: run `agentroster asyncapi` and commit the result"
    )


def test_environment_does_not_leak_into_the_documents(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "PREFIX": "other",
        "BROKER_URL": "amqp://u:p@elsewhere:5673/vhost",
        "DELIVERY_LIMIT": "9",
        "EVENT_LOG_MAX_AGE": "1D",
        "EVENT_SOURCE": "urn:elsewhere",
    }.items():
        monkeypatch.setenv(f"AGENTROSTER_{name}", value)
    result = CliRunner().invoke(app, ["asyncapi", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in DOCUMENTS:
        assert (tmp_path / name).read_text() == (repo_root / "asyncapi" / name).read_text()


def test_prefix_option_renames_every_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["asyncapi", "--out", str(tmp_path), "--prefix", "blue"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "agent.yaml").read_text()
    assert "blue.commands" in text
    assert "blue.events" in text
    assert "agentroster.commands" not in text
    assert yaml.safe_load(text)["info"][PREFIX_EXTENSION] == "blue"
    bad = CliRunner().invoke(app, ["asyncapi", "--out", str(tmp_path), "--prefix", "Not_A_Label"])
    assert bad.exit_code == 2


def test_references_resolve_and_component_keys_are_valid(
    committed: dict[str, dict[str, Any]],
) -> None:
    for doc in committed.values():
        check(doc)
        assert doc["asyncapi"] == "3.0.0"
        for section in doc["components"].values():
            assert all(COMPONENT_KEY.match(key) for key in section)


def amqp_names(doc: dict[str, Any]) -> set[str]:
    """Every exchange and queue name in the channels' AMQP bindings (a server-named one is "")."""
    names = set()
    for channel in doc["channels"].values():
        amqp = channel["bindings"]["amqp"]
        for key in ("exchange", "x-exchange", "queue", "x-queue"):
            if key in amqp:
                names.add(amqp[key].get("name", ""))
        names.update(queue["name"] for queue in amqp.get("x-queues", ()))
    return names - {""}


def test_the_prefix_is_machine_readable_and_begins_every_name(
    committed: dict[str, dict[str, Any]],
) -> None:
    """`info.x-agentroster-prefix` is the prefix every exchange and queue name begins with."""
    for doc in committed.values():
        prefix = doc["info"][PREFIX_EXTENSION]
        assert prefix == NAMES.prefix
        names = amqp_names(doc)
        assert names
        assert all(name.startswith(f"{prefix}.") for name in names), names
        assert f"`info.{PREFIX_EXTENSION}`" in doc["info"]["description"]


# --- channels: exchange, address, queue -------------------------------------------------------


def test_every_channel_names_its_exchange_and_address(
    committed: dict[str, dict[str, Any]],
) -> None:
    for doc in committed.values():
        for channel_id, channel in doc["channels"].items():
            exchange = exchange_of(channel)
            assert exchange["name"] in {
                NAMES.commands_exchange,
                NAMES.events_exchange,
                NAMES.dead_letter_exchange,
                "",  # the default exchange: only the worker's replies to the write gateway
            }, channel_id
            if not exchange["name"]:
                assert channel["address"].startswith("amq.rabbitmq.reply-to."), channel_id
            assert exchange["type"] in {"topic", "fanout", "direct"}
            assert exchange["durable"] is True
            if exchange["type"] == "topic":  # a fanout exchange routes by no key
                assert channel["address"], channel_id
            for parameter in re.findall(r"\{(\w+)\}", channel.get("address") or ""):
                assert channel["parameters"][parameter]["description"]


def test_commands_channel_of_the_registry_is_its_quorum_queue(registry: dict[str, Any]) -> None:
    [consume] = [op for op in registry["operations"].values() if op["action"] == "receive"]
    channel = resolve(registry, consume["channel"])
    amqp = channel["bindings"]["amqp"]
    assert amqp["is"] == "queue"
    assert amqp["queue"]["name"] == NAMES.commands_queue
    assert amqp["queue"]["durable"] is True
    arguments = amqp["queue"]["x-arguments"]
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-dead-letter-exchange"] == NAMES.dead_letter_exchange
    assert arguments["x-delivery-limit"] == default_settings().delivery_limit
    assert amqp["x-exchange"]["name"] == NAMES.commands_exchange
    assert amqp["x-bindingKey"] == channel["address"] == NAMES.commands_binding
    assert "quorum" in channel["description"]


def test_registry_documents_the_queues_bound_to_its_exchanges(registry: dict[str, Any]) -> None:
    bound = {
        queue["name"]: queue
        for channel in registry["channels"].values()
        for queue in channel["bindings"]["amqp"].get("x-queues", ())
    }
    assert bound[NAMES.events_log]["x-arguments"]["x-queue-type"] == "stream"
    assert bound[NAMES.events_log]["x-bindingKey"] == "#"
    assert bound[NAMES.dead_letter_queue]["x-arguments"]["x-queue-type"] == "quorum"


# --- messages ---------------------------------------------------------------------------------


def test_every_message_has_properties_a_described_payload_and_valid_examples(
    committed: dict[str, dict[str, Any]],
) -> None:
    for doc in committed.values():
        for message_id, message in doc["components"]["messages"].items():
            assert message["contentType"] == "application/json", message_id
            assert message["description"], message_id
            assert message["summary"], message_id
            payload = resolve(doc, message["payload"])
            assert payload["description"], message_id
            assert message["bindings"]["amqp"]["bindingVersion"] == "0.3.0"
            assert message["examples"], message_id
            for example in message["examples"]:
                validator(doc, message["payload"]).validate(example["payload"])
                if "headers" in message:
                    validator(doc, message["headers"]).validate(example["headers"])


def test_messages_name_no_correlation_id(committed: dict[str, dict[str, Any]]) -> None:
    """No header of the contract is a correlation id (FastStream documents one by default)."""
    for doc in committed.values():
        for message_id, message in doc["components"]["messages"].items():
            assert "correlationId" not in message, message_id


def test_enums_are_named_schemas(committed: dict[str, dict[str, Any]]) -> None:
    """A generated client names an enum after its schema, not after the property holding it."""
    properties = {
        ("AgentEvent", "status"): "AgentStatus",
        ("AgentEvent", "reason"): "ChangeReason",
        ("AgentView", "card_format"): "CardFormat",
    }
    for doc in committed.values():
        schemas = doc["components"]["schemas"]
        for (schema, name), enum in properties.items():
            assert schemas[schema]["properties"][name]["$ref"] == f"#/components/schemas/{enum}"
            assert schemas[enum]["type"] == "string"
            assert schemas[enum]["enum"]
            assert schemas[enum]["description"]


@pytest.mark.parametrize(
    "model", [*COMMAND_MODELS.values(), AgentEvent, AgentView, Endpoint, Skill]
)
def test_a_schema_is_closed_exactly_when_its_model_forbids_extra_fields(
    committed: dict[str, dict[str, Any]], model: type[BaseModel]
) -> None:
    """`additionalProperties: false` where the model rejects unknown fields, and only there."""
    strict = model.model_config.get("extra") == "forbid"
    for doc in committed.values():
        schema = doc["components"]["schemas"][model.__name__]
        assert (schema.get("additionalProperties") is False) == strict, model.__name__


def test_payload_examples_are_valid_models(committed: dict[str, dict[str, Any]]) -> None:
    for doc in committed.values():
        for message in doc["components"]["messages"].values():
            kind = message["bindings"]["amqp"].get("messageType")
            for example in message["examples"]:
                if kind in COMMAND_KINDS:
                    COMMAND_MODELS[kind].model_validate(example["payload"])
                elif kind == HEARTBEAT_BATCH_TYPE:
                    HeartbeatBatch.model_validate(example["payload"])
                elif kind is not None:
                    AgentEvent.model_validate(example["payload"])


def test_commands_and_events_document_the_trace_context_headers(
    committed: dict[str, dict[str, Any]],
) -> None:
    for doc in committed.values():
        messages = [
            m
            for m in doc["components"]["messages"].values()
            if m["bindings"]["amqp"].get("messageType", "").startswith("agent.")
            or m["bindings"]["amqp"].get("messageType") in COMMAND_KINDS
        ]
        assert len(messages) == len(EVENT_KINDS) + len(COMMAND_KINDS)
        for message in messages:
            headers = resolve(doc, message["headers"])
            assert "traceparent" not in headers.get("required", [])
            traceparent = headers["properties"]["traceparent"]
            assert re.fullmatch(traceparent["pattern"], traceparent["examples"][0])
            assert headers["properties"]["tracestate"]["maxLength"] == 512


def test_event_messages_carry_the_cloud_events_headers(
    committed: dict[str, dict[str, Any]],
) -> None:
    for doc in committed.values():
        events = [
            m
            for m in doc["components"]["messages"].values()
            if m["bindings"]["amqp"].get("messageType", "").startswith("agent.")
        ]
        assert len(events) == len(EVENT_KINDS)
        for message in events:
            headers = resolve(doc, message["headers"])
            assert headers["type"] == "object"
            # and the optional W3C trace context of the command that caused the event
            assert list(headers["properties"]) == [*CE_HEADERS, "traceparent", "tracestate"]
            assert set(headers["required"]) == set(CE_HEADERS)
            # every attribute a CloudEvents String: the revision exceeds a 32-bit Integer
            assert all(p["type"] == "string" for p in headers["properties"].values())
            assert headers["properties"]["cloudEvents_revision"]["pattern"] == REVISION_PATTERN
            assert resolve(doc, message["payload"])["title"] == "AgentEvent"
            kind = message["bindings"]["amqp"]["messageType"].removeprefix("agent.")
            [example] = message["examples"]
            assert example["headers"]["cloudEvents_type"] == NAMES.event_type(kind)


# --- operations -------------------------------------------------------------------------------


def operations_by_kind(doc: dict[str, Any], action: str) -> dict[str, dict[str, Any]]:
    """Operations of one action, by the AMQP `type` of the one message each carries."""
    found = {}
    for operation in doc["operations"].values():
        if operation["action"] == action:
            for message in messages_of(doc, operation):
                found[message["bindings"]["amqp"].get("messageType")] = operation
    return found


def test_agent_sends_commands_and_receives_events(agent: dict[str, Any]) -> None:
    sends = operations_by_kind(agent, "send")
    receives = operations_by_kind(agent, "receive")
    assert set(sends) == set(COMMAND_KINDS)
    assert set(receives) == {f"agent.{kind}" for kind in EVENT_KINDS}
    for kind in COMMAND_KINDS:
        operation = sends[kind]
        channel = resolve(agent, operation["channel"])
        assert channel["address"] == NAMES.command_key("{agent_id}", kind)
        assert exchange_of(channel)["name"] == NAMES.commands_exchange
        assert operation["bindings"]["amqp"]["deliveryMode"] == 2
        assert operation["bindings"]["amqp"]["mandatory"] is True
        [message] = messages_of(agent, operation)
        assert resolve(agent, message["payload"])["title"] == COMMAND_MODELS[kind].__name__
    for event in EVENT_KINDS:
        channel = resolve(agent, receives[f"agent.{event}"]["channel"])
        assert channel["address"] == NAMES.event_key(event, "{agent_id}")
        assert channel["bindings"]["amqp"]["is"] == "routingKey"
        assert exchange_of(channel)["name"] == NAMES.events_exchange


def test_operations_bind_no_cc_and_only_receivers_ack(
    committed: dict[str, dict[str, Any]],
) -> None:
    """The routing key is the channel's address; `ack` is the consumer's, not the sender's.

    In the AMQP bindings 0.3.0 `cc` is the CC header: a generator honouring it would send every
    message once more, to a literal `agent.{agent_id}.register`.
    """
    for doc in committed.values():
        for operation_id, operation in doc["operations"].items():
            amqp = operation["bindings"]["amqp"]
            assert "cc" not in amqp, operation_id
            assert "bcc" not in amqp, operation_id
            if operation["action"] == "send":
                assert "ack" not in amqp, operation_id
            else:
                assert amqp["ack"] is True, operation_id


def test_registry_receives_commands_and_sends_events(registry: dict[str, Any]) -> None:
    receives = operations_by_kind(registry, "receive")
    sends = operations_by_kind(registry, "send")
    assert set(receives) == {*COMMAND_KINDS, HEARTBEAT_BATCH_TYPE}  # and the gateway's batches
    assert {f"agent.{kind}" for kind in EVENT_KINDS} | {None} == set(sends)  # None: dead letters
    for operation_id, operation in registry["operations"].items():
        # replies to the write gateway are transient: none outlives the gateway's wait
        persistent = not operation_id.startswith("amq.rabbitmq.reply-to")
        assert operation["bindings"]["amqp"]["deliveryMode"] == (2 if persistent else 1)


def test_a_new_declaration_must_be_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    """A publisher added to the worker fails the generation until the generator describes it."""
    import agentroster.specification as specification

    def worker_with_more(settings: Settings) -> Worker:
        worker = create_worker(settings)
        worker.broker.publisher("somewhere", title="extra")
        return worker

    monkeypatch.setattr(specification, "create_worker", worker_with_more)
    with pytest.raises(RuntimeError, match="not documented"):
        specification.registry_document(default_settings())
