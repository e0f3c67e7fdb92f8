"""Turn a raw command message into what the store applies, or a rejection with a reason.

Everything that can be wrong with a message is found here, before Redis is touched, so a bad
message costs no round trip and never fails a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from agentroster.contracts import (
    COMMAND_MODELS,
    DEFAULT_MAX_CARD_BYTES,
    DeadLetterReason,
    Deregister,
    Heartbeat,
    Register,
    agent_view,
    card_bytes,
    card_digest,
)
from agentroster.registry.rules import TtlBounds
from agentroster.registry.terms import index_terms, search_text


class Rejected(Exception):
    """A command that can never be applied; it is dead-lettered with `reason`."""

    def __init__(self, reason: DeadLetterReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Limits:
    """What the registry accepts."""

    ttl: TtlBounds = field(default_factory=TtlBounds)
    max_card_bytes: int = DEFAULT_MAX_CARD_BYTES
    #: Commands without a broker-validated `user_id` are rejected (production).
    require_identity: bool = False


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated command in the flat form the apply script takes.

    `digest` is the card's digest (heartbeats compare it); `state_digest` also covers endpoints
    and labels, so any change a subscriber can see produces `agent.updated`.
    """

    kind: str
    agent_id: str
    instance_id: str
    seq: int
    ttl_ms: int = 0
    interval_ms: int = 0
    idle_ttl_ms: int = 0
    user_id: str = ""
    digest: str = ""
    state_digest: str = ""
    card: bytes = b""
    view: bytes = b""
    reason: str = ""
    terms: str = ""
    text: str = ""


def prepare_heartbeat(command: Heartbeat, user_id: str, limits: Limits) -> Prepared:
    """A validated heartbeat in the apply script's form (its TTL clamped to the bounds)."""
    return Prepared(
        kind="heartbeat",
        agent_id=command.agent_id,
        instance_id=command.instance_id,
        seq=command.seq,
        ttl_ms=limits.ttl.clamp_ms(command.ttl_s),
        user_id=user_id,
        digest=command.card_digest,
    )


def kind_from_routing_key(routing_key: str) -> tuple[str, str]:
    """Split `agent.<agent_id>.<kind>` into (agent_id, kind); reject anything else."""
    parts = routing_key.split(".")
    if len(parts) != 3 or parts[0] != "agent":
        raise Rejected("bad-routing-key", f"expected agent.<agent_id>.<kind>, got {routing_key!r}")
    return parts[1], parts[2]


def prepare(routing_key: str, body: bytes, user_id: str | None, limits: Limits) -> Prepared:
    """Validate one command message; raise `Rejected` with the reason it cannot be applied."""
    key_agent, kind = kind_from_routing_key(routing_key)
    user = user_id or ""
    if not user and limits.require_identity:
        raise Rejected(
            "identity-required",
            "this registry requires an identity: publish with the AMQP user_id property set "
            "to your broker user name",
        )
    model = COMMAND_MODELS.get(kind)
    if model is None:
        raise Rejected("unknown-kind", f"unknown command kind {kind!r}")
    try:
        command = model.model_validate_json(body)
    except ValidationError as exc:
        json_broken = any(e["type"] == "json_invalid" for e in exc.errors())
        raise Rejected(
            "malformed-json" if json_broken else "invalid-schema",
            _short(exc),
        ) from None
    if command.agent_id != key_agent:
        raise Rejected(
            "agent-id-mismatch",
            f"routing key names {key_agent!r}, body names {command.agent_id!r}",
        )
    match command:
        case Register():
            return _prepare_register(command, user, limits)
        case Heartbeat():
            return prepare_heartbeat(command, user, limits)
        case Deregister():
            return Prepared(
                kind="deregister",
                agent_id=command.agent_id,
                instance_id=command.instance_id,
                seq=command.seq,
                user_id=user,
                reason=command.reason,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _prepare_register(command: Register, user: str, limits: Limits) -> Prepared:
    try:
        card = card_bytes(command.card)
        digest = card_digest(command.card)
    except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
        raise Rejected("invalid-card", str(exc)) from None
    if len(card) > limits.max_card_bytes:
        raise Rejected(
            "card-too-large", f"card is {len(card)} bytes, the limit is {limits.max_card_bytes}"
        )
    try:
        view = agent_view(command.card, command.endpoints, command.labels)
    except ValidationError as exc:
        raise Rejected("invalid-card", _short(exc)) from None
    view_json = view.model_dump_json(exclude_defaults=False).encode()
    return Prepared(
        kind="register",
        agent_id=command.agent_id,
        instance_id=command.instance_id,
        seq=command.seq,
        ttl_ms=limits.ttl.clamp_ms(command.ttl_s),
        interval_ms=round((command.interval_s or 0) * 1000),
        idle_ttl_ms=round((command.idle_ttl_s or 0) * 1000),
        user_id=user,
        digest=digest,
        state_digest=card_digest({"d": digest, "v": view_json.decode()}),
        card=card,
        view=view_json,
        terms="\n".join(index_terms(view)),
        text=search_text(view),
    )


def _short(exc: ValidationError) -> str:
    """First few validation errors, one line each, without echoing the input back."""
    lines = [
        f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(lines)[:1000]
