"""Turn a raw command message into what the store applies, or a rejection with a reason.

Everything that can be wrong with a message is found here, before Redis is touched, so a bad
message costs no round trip and never fails a batch.

It also bounds what one registration may cost (`Limits`): the message's size before it is
parsed, the card, the number of endpoints, skills and index terms, the length of each term, and
the bytes the apply script stores for it (card, view, terms, search text). Past any of them the
command is dead-lettered with the limit named in the detail, so no message makes one script
call, or the reads after it, slow for everyone else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from agentroster.contracts import (
    COMMAND_MODELS,
    DEFAULT_MAX_CARD_BYTES,
    DeadLetterReason,
    Deregister,
    Heartbeat,
    Register,
    Topology,
    agent_view,
    card_bytes,
    card_digest,
)
from agentroster.contracts.acp_manifest import AGENT_NAME_PATTERN, MEDIA_RANGE_PATTERN
from agentroster.contracts.commands import LABEL_KEY_PATTERN
from agentroster.contracts.endpoints import PRINTABLE, URL_PATTERN
from agentroster.contracts.gateway import PRINCIPAL_HEADER, key_identity
from agentroster.contracts.ids import AMQP_DEFAULT_USER
from agentroster.contracts.mcp_server import SERVER_NAME_PATTERN
from agentroster.registry.card_signature import is_signed
from agentroster.registry.terms import index_terms, search_text


@dataclass(frozen=True, slots=True)
class TtlBounds:
    """The registry owns the limits: every `ttl_s` it is sent is clamped into these."""

    min_s: float = 5.0
    max_s: float = 24 * 3600.0

    def clamp_ms(self, ttl_s: float) -> int:
        """The bounded TTL in whole milliseconds."""
        return round(min(max(ttl_s, self.min_s), self.max_s) * 1000)


class Rejected(Exception):
    """A command that can never be applied; it is dead-lettered with `reason`."""

    def __init__(self, reason: DeadLetterReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


#: What one index term costs the apply script, counted in bytes stored (bench/README.md,
#: Limits: adding or removing a member of an index key costs about what storing this many
#: bytes does).
TERM_COST_BYTES = 256
#: Longest `idle_ttl_s` kept by default (longer ones are lowered to it): 7 days.
DEFAULT_IDLE_TTL_MAX_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Limits:
    """What the registry accepts: what one message and one registration may cost.

    Each limit is a setting (`AGENTROSTER_<NAME>`, named in the detail of a rejection); the
    defaults are far beyond what an honest agent sends. A registration's stored size
    (`max_registration_bytes`) counts its card, its view (name, description, endpoints,
    skills, tags, labels), its index terms and its search text.
    """

    ttl: TtlBounds = field(default_factory=TtlBounds)
    #: `idle_ttl_s` is lowered to this ceiling, as `ttl_s` is to `ttl.max_s`.
    idle_ttl: TtlBounds = field(
        default_factory=lambda: TtlBounds(min_s=0.001, max_s=DEFAULT_IDLE_TTL_MAX_S)
    )
    max_card_bytes: int = DEFAULT_MAX_CARD_BYTES
    #: Commands without a broker-validated `user_id` are rejected (production).
    require_identity: bool = False
    max_message_bytes: int = 256 * 1024
    max_registration_bytes: int = 256 * 1024
    max_endpoints: int = 32
    max_skills: int = 128
    max_index_terms: int = 256
    max_term_bytes: int = 512
    #: Broker users whose commands may speak for an API key (`PRINCIPAL_HEADER`).
    gateway_users: frozenset[str] = frozenset({AMQP_DEFAULT_USER})


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
    #: The W3C trace context its events carry (`tracing.pack`), '' for none; set by the worker.
    trace: str = ""
    #: The registration asked for its well-known card to be checked (not stored: the worker
    #: queues the check once the batch committed).
    verify: bool = False
    #: What apply.lua records as the card's `signature` (and index term) with the card:
    #: `unsigned` for a card without `signatures`, '' for a signed one (checked after the
    #: batch committed, signature.lua).
    signature: str = ""

    def stored_bytes(self) -> int:
        """About what applying it writes to Redis: card, view, index terms and search text."""
        return len(self.card) + len(self.view) + len(self.terms.encode()) + len(self.text.encode())

    def cost(self) -> int:
        """What applying it costs the apply script, in bytes: what it stores, and for each index
        term `TERM_COST_BYTES` more (a term is a key the script creates, and on a change
        deletes). The batcher bounds a batch's cost (`AGENTROSTER_BATCH_MAX_BYTES`)."""
        terms = self.terms.count("\n") + 1 if self.terms else 0
        return self.stored_bytes() + terms * TERM_COST_BYTES


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


#: Longest principal name a gateway command may name (the key store's names are shorter).
MAX_PRINCIPAL_CHARS = 128


def speaker(user_id: str | None, principal: object, limits: Limits) -> str | None:
    """The identity a command speaks for: its broker user, or for a gateway user's command with
    `PRINCIPAL_HEADER` (`principal` is that header's value, None when absent), the API key's.

    From anyone but a gateway user the header is a forgery: `Rejected("forbidden")`.
    """
    if principal is None:
        return user_id
    if user_id not in limits.gateway_users:
        raise Rejected(
            "forbidden",
            f"only a gateway user (AGENTROSTER_GATEWAY_USERS) may set the {PRINCIPAL_HEADER} "
            f"header; {'user ' + repr(user_id) if user_id else 'a message without user_id'} "
            "is not one",
        )
    if not isinstance(principal, str) or len(principal) > MAX_PRINCIPAL_CHARS:
        raise Rejected(
            "invalid-schema",
            f"the {PRINCIPAL_HEADER} header must be a string of at most "
            f"{MAX_PRINCIPAL_CHARS} characters",
        )
    return key_identity(principal)


def kind_from_routing_key(routing_key: str) -> tuple[str, str]:
    """Split `agent.<agent_id>.<kind>` into (agent_id, kind); reject anything else."""
    parsed = Topology.parse_command_key(routing_key)
    if parsed is None:
        raise Rejected("bad-routing-key", f"expected agent.<agent_id>.<kind>, got {routing_key!r}")
    return parsed


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
    if len(body) > limits.max_message_bytes:  # before parsing: a huge body costs nothing more
        raise Rejected(
            "message-too-large",
            f"the message is {len(body)} bytes, the limit is {limits.max_message_bytes} "
            "(AGENTROSTER_MAX_MESSAGE_BYTES)",
        )
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
    if (where := non_finite_at(command.card)) is not None:
        # JSON has no such numbers: stored, they would come back as null, not as registered
        raise Rejected("invalid-card", f"{where or '<card>'}: NaN and Infinity are not JSON")
    try:
        card = card_bytes(command.card)
        digest = card_digest(command.card)
    except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits
        raise Rejected("invalid-card", str(exc)) from None
    if len(card) > limits.max_card_bytes:
        raise Rejected(
            "card-too-large",
            f"card is {len(card)} bytes, the limit is {limits.max_card_bytes} "
            "(AGENTROSTER_MAX_CARD_BYTES)",
        )
    try:
        view = agent_view(command.card, command.endpoints, command.labels)
    except ValidationError as exc:
        raise Rejected("invalid-card", _short(exc)) from None
    except ValueError as exc:  # a card url urlsplit refuses (e.g. an unbalanced IPv6 bracket)
        raise Rejected("invalid-card", f"a url of the card is not a valid URI ({exc})") from None
    _within("endpoints", len(view.endpoints), limits.max_endpoints, "MAX_ENDPOINTS")
    _within("skills", len(view.skills), limits.max_skills, "MAX_SKILLS")
    terms = index_terms(view)
    _within("index terms", len(terms), limits.max_index_terms, "MAX_INDEX_TERMS")
    longest = max((len(term.encode()) for term in terms), default=0)
    if longest > limits.max_term_bytes:
        term = max(terms, key=lambda t: len(t.encode()))
        raise Rejected(
            "registration-too-large",
            f"the index term {term[:60]!r}... is {longest} bytes, the limit is "
            f"{limits.max_term_bytes} (AGENTROSTER_MAX_TERM_BYTES)",
        )
    view_json = view.model_dump_json(exclude_defaults=False).encode()
    terms_text = "\n".join(terms)
    text = search_text(view)
    prepared = Prepared(
        kind="register",
        agent_id=command.agent_id,
        instance_id=command.instance_id,
        seq=command.seq,
        ttl_ms=limits.ttl.clamp_ms(command.ttl_s),
        interval_ms=round((command.interval_s or 0) * 1000),
        idle_ttl_ms=limits.idle_ttl.clamp_ms(command.idle_ttl_s) if command.idle_ttl_s else 0,
        user_id=user,
        digest=digest,
        state_digest=card_digest({"d": digest, "v": view_json.decode()}),
        card=card,
        view=view_json,
        terms=terms_text,
        text=text,
        verify=command.verify,
        signature="" if is_signed(command.card) else "unsigned",
    )
    if (stored := prepared.stored_bytes()) > limits.max_registration_bytes:
        raise Rejected(
            "registration-too-large",
            f"the registration stores {stored} bytes (card, view, index terms, search text), "
            f"the limit is {limits.max_registration_bytes} (AGENTROSTER_MAX_REGISTRATION_BYTES)",
        )
    return prepared


def _within(what: str, count: int, limit: int, setting: str) -> None:
    """Reject a registration with more `what` than `limit`."""
    if count > limit:
        raise Rejected(
            "registration-too-large",
            f"the registration has {count} {what}, the limit is {limit} (AGENTROSTER_{setting})",
        )


def non_finite_at(value: Any) -> str | None:
    """The path of the first NaN or infinite number in a JSON value ('' for the value itself),
    or None when every number is finite. Iterative: a deeply nested card cannot overflow it."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return path
        elif isinstance(item, dict):
            stack.extend((f"{path}.{key}" if path else str(key), v) for key, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{path}.{n}" if path else str(n), v) for n, v in enumerate(item))
    return None


#: What a pattern of the contracts means, said instead of the regular expression.
_PATTERN_MEANS = {
    PRINTABLE: "must not contain control characters",
    URL_PATTERN: "must not contain control characters or spaces",
    LABEL_KEY_PATTERN: "must be 1-63 characters, without ':', '=' or control characters",
    SERVER_NAME_PATTERN: "must be a reverse-DNS name and one slash, e.g. io.github.user/weather",
    AGENT_NAME_PATTERN: "must be a DNS label: a-z, 0-9 and '-', not at either end",
    MEDIA_RANGE_PATTERN: "must be a media type such as text/plain or image/*",
}


def _short(exc: ValidationError) -> str:
    """First few validation errors, one line each, without echoing the input back."""
    lines = []
    for e in exc.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "<body>"
        pattern = str((e.get("ctx") or {}).get("pattern"))
        lines.append(f"{where}: {_PATTERN_MEANS.get(pattern, e['msg'])}")
    return "; ".join(lines)[:1000]
