"""Complete FastStream's AsyncAPI 3.0 output into a document a client can be generated from.

FastStream documents channels, operations and payload schemas. This adds, from the same
declarations, what its 3.0 output lacks:

- the exchange of a subscriber's channel (FastStream keeps only the queue): a channel an agent
  receives on becomes `is: routingKey` with its exchange (the queue is the subscriber's own, as
  `x-queue`); the registry's commands channel stays `is: queue` and gains `x-exchange` and
  `x-bindingKey` (the AMQP binding 0.3.0 allows `exchange` only beside `is: routingKey`);
- queue arguments (`x-arguments`: quorum, delivery limit, dead-lettering, stream age) and the
  registry's queues bound to an exchange (`x-queues`), also in the channel's description;
- `parameters` for every `{name}` in an address;
- one message per kind (FastStream gives a union one) with `contentType`, the AMQP `type` as
  the message binding's `messageType`, headers, descriptions and examples; the operations'
  persistent delivery mode and timestamp;
- component keys that match the specification's `^[a-zA-Z0-9.\\-_]+$`;
- a stable order: every map of ids is sorted, unreferenced schemas are dropped.

It drops what FastStream writes but the wire does not do: the operations' `cc` (in the AMQP
bindings 0.3.0 that is the CC header, more routing keys to copy each message to; the routing
key is the channel's address), `ack` on a send operation (whether the consumer acknowledges),
and the messages' `correlationId` (no header of the contract is a correlation id).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from faststream.rabbit import RabbitExchange, RabbitQueue
from faststream.rabbit.configs.base import RabbitConfig
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.subscriber import RabbitSubscriber

from agentroster.specification._messages import AMQP_BINDING_VERSION, JSON, MessageSpec

COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")
_PARAMETER = re.compile(r"\{(\w+)\}")
_TOP_LEVEL = ("asyncapi", "info", "defaultContentType", "servers", "channels", "operations")
PERSISTENT = 2


@dataclass(frozen=True)
class Channel:
    """One declared subscriber or publisher, and what its channel needs beyond FastStream's."""

    endpoint: RabbitSubscriber | RabbitPublisher
    messages: tuple[str, ...]  # message ids of the catalog
    summary: str  # of the operation
    own_queue: bool = False  # a subscriber's queue is its own: the exchange is the contract
    bound_queues: tuple[tuple[RabbitQueue, str], ...] = ()  # registry queues on its exchange


def complete(
    doc: dict[str, Any],
    channels: list[Channel],
    catalog: Mapping[str, MessageSpec],
    *,
    schemas: Mapping[str, dict[str, Any]],
    schema_descriptions: Mapping[str, str],
    schema_examples: Mapping[str, list[dict[str, Any]]],
    parameters: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """Complete FastStream's jsonable document in place and return it in a stable order."""
    components = doc.setdefault("components", {})
    old_messages: set[str] = set()
    renames: dict[str, str] = {}
    used: list[str] = []
    undocumented = set(doc.get("channels", {})) - {_channel_id(c) for c in channels}
    if undocumented:
        raise RuntimeError(
            f"declared but not documented: {sorted(undocumented)}; describe them in "
            "agentroster.specification (the wire contract changes deliberately)"
        )
    for channel in channels:
        for ref in _channel(doc, channel).get("messages", {}).values():
            old_messages.add(_ref_name(ref))
        renames.update(_payload_renames(doc, channel, catalog))
        _complete_channel(doc, channel, parameters)
        _complete_operation(doc, channel, catalog)
        used += [m for m in channel.messages if m not in used]
    for key in old_messages:
        del components["messages"][key]
    for message_id in used:
        components["messages"][message_id] = _message(catalog[message_id])

    all_schemas: dict[str, Any] = components.setdefault("schemas", {})
    for old, new in renames.items():
        all_schemas[new] = {**all_schemas.pop(old), "title": new}
    _rename_refs(
        doc, {f"#/components/schemas/{o}": f"#/components/schemas/{n}" for o, n in renames.items()}
    )
    all_schemas.update(schemas)
    for name, description in schema_descriptions.items():
        if name in all_schemas:
            all_schemas[name]["description"] = description
    for name, examples in schema_examples.items():
        if name in all_schemas:
            all_schemas[name]["examples"] = examples
    _drop_unreferenced_schemas(doc)
    return _stable(doc)


# --- channels and operations --------------------------------------------------------------------


def _channel_id(channel: Channel) -> str:
    return channel.endpoint.specification.name


def _channel(doc: dict[str, Any], channel: Channel) -> dict[str, Any]:
    found: dict[str, Any] = doc["channels"][_channel_id(channel)]
    return found


def _payload_renames(
    doc: dict[str, Any], channel: Channel, catalog: Mapping[str, MessageSpec]
) -> dict[str, str]:
    """Check FastStream's payload is the catalog's; name it as the catalog does if need be.

    A handler-less subscriber (the worker's commands, an agent's events: see
    `worker/consumer.py`) has no typed payload, only FastStream's untyped placeholder: there the
    catalog's messages are the whole payload, and the placeholder is dropped.
    """
    schemas = doc["components"]["schemas"]
    refs = list(_channel(doc, channel)["messages"].values())
    if len(refs) != 1:
        raise RuntimeError(f"{_channel_id(channel)}: expected one FastStream message")
    message = doc["components"]["messages"][_ref_name(refs[0])]
    declared = _ref_name(message["payload"])
    if isinstance(channel.endpoint, RabbitSubscriber) and not channel.endpoint.calls:
        if set(schemas[declared]) != {"title"}:
            raise RuntimeError(f"{_channel_id(channel)}: a handler-less subscriber is typed")
        return {}
    members = {_ref_name(r) for r in schemas[declared].get("anyOf", ())}
    expected = {catalog[m].payload for m in channel.messages}
    if expected == {declared} or (len(expected) > 1 and expected == members):
        return {}  # the payload, or a union split into one message per member
    if len(expected) == 1:
        return {declared: expected.pop()}
    raise RuntimeError(f"{_channel_id(channel)}: declared {declared}, documented {expected}")


def _complete_channel(
    doc: dict[str, Any], channel: Channel, parameters: Mapping[str, dict[str, Any]]
) -> None:
    obj = _channel(doc, channel)
    config = channel.endpoint.specification.config
    if not isinstance(config, RabbitConfig):
        raise TypeError(f"{_channel_id(channel)}: not a RabbitMQ subscriber or publisher")
    exchange, queue = config.exchange, config.queue
    amqp = obj["bindings"]["amqp"]
    vhost = (amqp.get("queue") or amqp.get("exchange") or {}).get("vhost", "/")
    exchange_obj = _exchange(exchange, vhost)
    notes = []
    if amqp["is"] == "queue" and channel.own_queue:
        own = {k: v for k, v in amqp["queue"].items() if k != "name"}
        own["description"] = (
            "The subscriber's own queue (e.g. exclusive and server-named), bound to the "
            "exchange with the channel's address; `*` in place of a parameter matches any."
        )
        binding: dict[str, Any] = {"is": "routingKey", "exchange": exchange_obj, "x-queue": own}
        notes.append(f"Bind a queue to the {_describe_exchange(exchange)} with `{obj['address']}`.")
    elif amqp["is"] == "queue":
        key = queue.routing_key or ""
        binding = {
            "is": "queue",
            "queue": _queue(queue, vhost),
            "x-exchange": exchange_obj,
            "x-bindingKey": key,
        }
        notes.append(
            f"Queue {_describe_queue(queue)}, bound with `{key}` to the "
            f"{_describe_exchange(exchange)}."
        )
    else:
        if amqp["exchange"].get("name", "") != exchange.name:
            raise RuntimeError(f"{_channel_id(channel)}: exchange {amqp['exchange']['name']}")
        binding = {"is": "routingKey", "exchange": exchange_obj}
        notes.append(f"Published to the {_describe_exchange(exchange)}.")
    if channel.bound_queues:
        binding["x-queues"] = [_queue(q, vhost, key) for q, key in channel.bound_queues]
        bound = "; ".join(
            _describe_queue(q) + (f", bound `{key}`" if key else "")
            for q, key in channel.bound_queues
        )
        notes.append(f"The registry's queues on it: {bound}.")
    binding["bindingVersion"] = amqp.get("bindingVersion", AMQP_BINDING_VERSION)
    obj["bindings"] = {"amqp": binding}
    obj["description"] = " ".join([obj.get("description", ""), *notes]).strip()
    names = _PARAMETER.findall(obj.get("address") or "")
    if names:
        obj["parameters"] = {name: parameters[name] for name in names}
    obj["messages"] = {m: {"$ref": f"#/components/messages/{m}"} for m in channel.messages}


def _complete_operation(
    doc: dict[str, Any], channel: Channel, catalog: Mapping[str, MessageSpec]
) -> None:
    cid = _channel_id(channel)
    [op_id] = [k for k, op in doc["operations"].items() if _ref_name(op["channel"]) == cid]
    old = doc["operations"][op_id]
    amqp = {**old.get("bindings", {}).get("amqp", {})}
    amqp.pop("cc", None)  # the CC header (copies to more keys), not the routing key
    if old["action"] == "send":
        amqp.pop("ack", None)  # whether the consumer acknowledges: the receiving side's
    amqp.setdefault("deliveryMode", PERSISTENT)
    amqp["timestamp"] = True
    amqp["bindingVersion"] = amqp.pop("bindingVersion", AMQP_BINDING_VERSION)  # last
    doc["operations"][op_id] = {
        "action": old["action"],
        "channel": old["channel"],
        "title": op_id,
        "summary": channel.summary,
        "description": " ".join(catalog[m].summary for m in channel.messages),
        "bindings": {"amqp": amqp},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in channel.messages],
    }


def _message(spec: MessageSpec) -> dict[str, Any]:
    amqp: dict[str, Any] = {}
    if spec.message_type is not None:
        amqp["messageType"] = spec.message_type
    amqp["bindingVersion"] = AMQP_BINDING_VERSION
    obj: dict[str, Any] = {
        "name": spec.id,
        "title": spec.title,
        "summary": spec.summary,
        "description": spec.description,
        "contentType": JSON,
    }
    if spec.headers is not None:
        obj["headers"] = {"$ref": f"#/components/schemas/{spec.headers}"}
    obj["payload"] = {"$ref": f"#/components/schemas/{spec.payload}"}
    obj["bindings"] = {"amqp": amqp}
    obj["examples"] = [spec.example]
    return obj


# --- exchanges and queues -----------------------------------------------------------------------


def _exchange(exchange: RabbitExchange, vhost: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": exchange.name,
        "type": exchange.type.value,
        "durable": exchange.durable,
        "autoDelete": exchange.auto_delete,
        "vhost": vhost,
    }
    if exchange.arguments:
        obj["x-arguments"] = dict(sorted(exchange.arguments.items()))
    return obj


def _queue(queue: RabbitQueue, vhost: str, binding_key: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": queue.name,
        "durable": queue.durable,
        "exclusive": queue.exclusive,
        "autoDelete": queue.auto_delete,
        "vhost": vhost,
    }
    if binding_key is not None:
        obj["x-bindingKey"] = binding_key
    if queue.arguments:
        obj["x-arguments"] = dict(sorted(queue.arguments.items()))
    return obj


def _describe_exchange(exchange: RabbitExchange) -> str:
    if not exchange.name:
        return "default exchange (the routing key names the queue)"
    durable = "durable" if exchange.durable else "transient"
    return f"{exchange.type.value} exchange `{exchange.name}` ({durable})"


def _describe_queue(queue: RabbitQueue) -> str:
    arguments = dict(queue.arguments or {})
    kind = arguments.pop("x-queue-type", "classic")
    details = [kind, "durable" if queue.durable else "transient"]
    details += [f"`{k}` {v}" for k, v in sorted(arguments.items())]
    return f"`{queue.name}` ({', '.join(details)})"


# --- references and order -----------------------------------------------------------------------


def _ref_name(ref: Mapping[str, Any]) -> str:
    """The last segment of a local `$ref`."""
    target: str = ref["$ref"]
    return target.rsplit("/", 1)[-1]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _rename_refs(doc: dict[str, Any], renames: Mapping[str, str]) -> None:
    for node in _walk(doc):
        target = node.get("$ref")
        if isinstance(target, str) and target in renames:
            node["$ref"] = renames[target]


def _drop_unreferenced_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    prefix = "#/components/schemas/"
    outside = {k: v for k, v in doc.items() if k != "components"}
    outside["messages"] = doc["components"].get("messages", {})
    pending = [n for n in references(outside) if n.startswith(prefix)]
    keep: set[str] = set()
    while pending:
        name = pending.pop().removeprefix(prefix)
        if name not in keep:
            keep.add(name)
            pending += [n for n in references(schemas[name]) if n.startswith(prefix)]
    for name in set(schemas) - keep:
        del schemas[name]


def references(node: Any) -> list[str]:
    """Every local `$ref` in `node`."""
    return [n["$ref"] for n in _walk(node) if isinstance(n.get("$ref"), str)]


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys in the usual order; channels, operations and components sorted by id."""
    ordered = {key: doc[key] for key in _TOP_LEVEL if key in doc}
    for key in ("channels", "operations"):
        ordered[key] = dict(sorted(doc[key].items()))
    ordered["components"] = {
        section: dict(sorted(items.items())) for section, items in doc["components"].items()
    }
    return ordered


def check(doc: dict[str, Any]) -> None:
    """Fail unless every `$ref` resolves and every component key is a valid one."""
    for section, items in doc.get("components", {}).items():
        bad = [key for key in items if not COMPONENT_KEY.match(key)]
        if bad:
            raise RuntimeError(f"components.{section}: invalid keys {bad}")
    for target in references(doc):
        node: Any = doc
        for part in target.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise RuntimeError(f"unresolved $ref {target}")
            node = node[part]
