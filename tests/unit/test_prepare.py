"""`prepare()`: valid commands become `Prepared`, everything else `Rejected` with its reason."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroster.contracts import AgentView, card_bytes, card_digest
from agentroster.registry.prepare import Limits, Prepared, Rejected, TtlBounds, prepare

SENT_AT = "2025-01-01T12:00:00Z"
CARD: dict[str, Any] = {
    "name": "Weather Bot",
    "description": "Forecasts",
    "version": "1.0",
    "supportedInterfaces": [{"url": "https://w.example/a2a", "protocolBinding": "JSONRPC"}],
    "skills": [{"id": "forecast", "name": "Forecast", "tags": ["weather"]}],
    "x-vendor": {"anything": [1, 2, 3]},
}


def register_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "weather",
        "instance_id": "weather-7d9f-5c2a1b3e",
        "seq": 1,
        "ttl_s": 30,
        "card": CARD,
        "sent_at": SENT_AT,
    }
    body.update(overrides)
    return body


def heartbeat_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "weather",
        "instance_id": "weather-7d9f-5c2a1b3e",
        "seq": 2,
        "ttl_s": 30,
        "card_digest": card_digest(CARD),
        "sent_at": SENT_AT,
    }
    body.update(overrides)
    return body


def deregister_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "weather",
        "instance_id": "weather-7d9f-5c2a1b3e",
        "seq": 3,
        "reason": "shutdown",
        "sent_at": SENT_AT,
    }
    body.update(overrides)
    return body


def dumps(body: dict[str, Any]) -> bytes:
    # the standard library writes integers of any size, as a sender in another language may
    return json.dumps(body, separators=(",", ":")).encode()


REASONS = {
    "malformed-json",
    "invalid-schema",
    "unknown-kind",
    "bad-routing-key",
    "agent-id-mismatch",
    "card-too-large",
    "message-too-large",
    "registration-too-large",
    "invalid-card",
}


def rejection(routing_key: str, body: bytes, limits: Limits | None = None) -> Rejected:
    with pytest.raises(Rejected) as caught:
        prepare(routing_key, body, None, limits or Limits())
    return caught.value


# --- valid commands ----------------------------------------------------------------------------


def test_register_prepared_fields() -> None:
    """A valid register yields a register Prepared with ids, seq, ttl, card and digest."""
    prepared = prepare("agent.weather.register", dumps(register_body()), "alice", Limits())
    assert prepared.kind == "register"
    assert prepared.agent_id == "weather"
    assert prepared.instance_id == "weather-7d9f-5c2a1b3e"
    assert prepared.seq == 1
    assert prepared.ttl_ms == 30_000
    assert prepared.user_id == "alice"
    assert prepared.digest == card_digest(CARD)
    assert prepared.card == card_bytes(CARD)
    assert prepared.state_digest.startswith("sha256:")
    assert prepared.interval_ms == 0
    assert prepared.idle_ttl_ms == 0


def test_register_view_is_the_agent_view() -> None:
    """The register's view is the JSON AgentView of the card, with derived endpoints."""
    prepared = prepare("agent.weather.register", dumps(register_body()), None, Limits())
    view = AgentView.model_validate_json(prepared.view)
    assert view.name == "Weather Bot"
    assert view.tags == ["weather"]
    assert [e.url for e in view.endpoints] == ["https://w.example/a2a"]


def test_register_interval_and_idle_ttl_in_ms() -> None:
    """interval_s and idle_ttl_s are carried in milliseconds."""
    body = register_body(interval_s=10, idle_ttl_s=2.5)
    prepared = prepare("agent.weather.register", dumps(body), None, Limits())
    assert (prepared.interval_ms, prepared.idle_ttl_ms) == (10_000, 2_500)


@pytest.mark.parametrize(("ttl_s", "ttl_ms"), [(0.5, 5000), (30, 30_000), (10**6, 86_400_000)])
def test_register_ttl_is_clamped(ttl_s: float, ttl_ms: int) -> None:
    """The register's ttl is clamped into the registry's bounds."""
    body = register_body(ttl_s=ttl_s)
    assert prepare("agent.weather.register", dumps(body), None, Limits()).ttl_ms == ttl_ms


def test_register_ttl_custom_bounds() -> None:
    """Custom bounds in Limits are the ones applied."""
    limits = Limits(ttl=TtlBounds(min_s=1, max_s=60))
    assert (
        prepare("agent.weather.register", dumps(register_body(ttl_s=0.2)), None, limits).ttl_ms
        == 1000
    )
    assert (
        prepare("agent.weather.register", dumps(register_body(ttl_s=90)), None, limits).ttl_ms
        == 60_000
    )


def test_register_without_user_id_is_empty_string() -> None:
    """A message without a broker user_id gets an empty user_id."""
    assert prepare("agent.weather.register", dumps(register_body()), None, Limits()).user_id == ""


def test_register_state_digest_follows_labels_and_endpoints() -> None:
    """Same card, different labels or endpoints: same digest, different state_digest."""
    plain = prepare("agent.weather.register", dumps(register_body()), None, Limits())
    labelled = prepare(
        "agent.weather.register", dumps(register_body(labels={"team": "ops"})), None, Limits()
    )
    explicit = prepare(
        "agent.weather.register",
        dumps(
            register_body(endpoints=[{"transport": "http", "protocol": "a2a", "url": "https://x"}])
        ),
        None,
        Limits(),
    )
    assert plain.digest == labelled.digest == explicit.digest
    assert len({plain.state_digest, labelled.state_digest, explicit.state_digest}) == 3


def test_register_digest_ignores_key_order() -> None:
    """The digest of a register does not depend on the card's key order."""
    reordered = dict(reversed(list(CARD.items())))
    a = prepare("agent.weather.register", dumps(register_body()), None, Limits())
    b = prepare("agent.weather.register", dumps(register_body(card=reordered)), None, Limits())
    assert a.digest == b.digest
    assert a.card != b.card  # stored as given


def test_register_unknown_card_fields_are_kept() -> None:
    """The stored card keeps fields the registry does not know."""
    prepared = prepare("agent.weather.register", dumps(register_body()), None, Limits())
    assert orjson.loads(prepared.card)["x-vendor"] == {"anything": [1, 2, 3]}


def test_heartbeat_prepared_fields() -> None:
    """A valid heartbeat carries ids, seq, clamped ttl, the digest it states and the user."""
    prepared = prepare("agent.weather.heartbeat", dumps(heartbeat_body(ttl_s=1)), "bob", Limits())
    assert prepared == Prepared(
        kind="heartbeat",
        agent_id="weather",
        instance_id="weather-7d9f-5c2a1b3e",
        seq=2,
        ttl_ms=5000,
        user_id="bob",
        digest=card_digest(CARD),
    )


def test_heartbeat_ttl_above_max_is_clamped() -> None:
    """A heartbeat's ttl above the maximum is lowered to it."""
    body = heartbeat_body(ttl_s=10**7)
    assert prepare("agent.weather.heartbeat", dumps(body), None, Limits()).ttl_ms == 86_400_000


def test_deregister_prepared_fields() -> None:
    """A valid deregister carries ids, seq, reason and user, and no ttl."""
    prepared = prepare(
        "agent.weather.deregister", dumps(deregister_body(reason="sigterm")), "carol", Limits()
    )
    assert prepared == Prepared(
        kind="deregister",
        agent_id="weather",
        instance_id="weather-7d9f-5c2a1b3e",
        seq=3,
        user_id="carol",
        reason="sigterm",
    )


def test_deregister_default_reason_is_shutdown() -> None:
    """A deregister without a reason has reason shutdown."""
    body = deregister_body()
    del body["reason"]
    assert prepare("agent.weather.deregister", dumps(body), None, Limits()).reason == "shutdown"


def test_card_at_the_limit_is_accepted() -> None:
    """A card exactly as large as the limit is accepted."""
    size = len(card_bytes(CARD))
    limits = Limits(max_card_bytes=size)
    assert (
        prepare("agent.weather.register", dumps(register_body()), None, limits).kind == "register"
    )


# --- rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b'{"agent_id": }', b"\xff\xfe", b"{}x"])
def test_malformed_json(body: bytes) -> None:
    """A body that is not JSON is rejected as malformed-json."""
    assert rejection("agent.weather.register", body).reason == "malformed-json"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("register", {k: v for k, v in register_body().items() if k != "card"}),
        ("register", register_body(extra="field")),
        ("register", register_body(agent_id="Weather")),
        ("register", register_body(seq=0)),
        ("register", register_body(ttl_s=0)),
        ("register", register_body(card=[])),
        ("register", register_body(instance_id="has space")),
        ("register", register_body(labels={"": "empty key"})),
        ("register", register_body(endpoints=[{"transport": "http", "protocol": "a2a"}])),
        ("heartbeat", {k: v for k, v in heartbeat_body().items() if k != "card_digest"}),
        ("heartbeat", heartbeat_body(card=CARD)),
        ("heartbeat", heartbeat_body(seq=-1)),
        ("deregister", deregister_body(ttl_s=30)),
        ("deregister", deregister_body(sent_at="yesterday")),
    ],
    ids=[
        "missing-card",
        "extra-field",
        "bad-agent-id",
        "seq-0",
        "ttl-0",
        "card-not-object",
        "bad-instance-id",
        "empty-label-key",
        "endpoint-unaddressable",
        "heartbeat-missing-digest",
        "heartbeat-extra-card",
        "heartbeat-negative-seq",
        "deregister-extra-ttl",
        "deregister-bad-time",
    ],
)
def test_invalid_schema(kind: str, body: dict[str, Any]) -> None:
    """JSON that does not fit the command's schema is rejected as invalid-schema."""
    agent_id = body.get("agent_id", "weather")
    assert rejection(f"agent.{agent_id}.{kind}", dumps(body)).reason == "invalid-schema"


@pytest.mark.parametrize("body", [b"[]", b"null", b"42", b'"register"'])
def test_json_that_is_not_an_object(body: bytes) -> None:
    """Valid JSON that is not an object is rejected as invalid-schema."""
    assert rejection("agent.weather.register", body).reason == "invalid-schema"


def test_register_body_sent_as_heartbeat() -> None:
    """A register body under a heartbeat key is rejected as invalid-schema."""
    assert rejection("agent.weather.heartbeat", dumps(register_body())).reason == "invalid-schema"


@pytest.mark.parametrize("kind", ["update", "REGISTER", "", "joined"])
def test_unknown_kind(kind: str) -> None:
    """A routing key whose last part is not a command kind is rejected as unknown-kind."""
    assert rejection(f"agent.weather.{kind}", dumps(register_body())).reason == "unknown-kind"


@pytest.mark.parametrize(
    "routing_key",
    [
        "",
        "agent",
        "agent.weather",
        "weather.register",
        "agents.weather.register",
        "agent.weather.register.extra",
        "agent.weather.bot.register",
        "x.weather.register",
    ],
)
def test_bad_routing_key(routing_key: str) -> None:
    """A routing key that is not agent.<agent_id>.<kind> is rejected as bad-routing-key."""
    assert rejection(routing_key, dumps(register_body())).reason == "bad-routing-key"


def test_routing_key_checked_before_body() -> None:
    """A bad routing key is reported even when the body is malformed too."""
    assert rejection("nope", b"{").reason == "bad-routing-key"
    assert rejection("agent.weather.nope", b"{").reason == "unknown-kind"


@pytest.mark.parametrize("kind", ["register", "heartbeat", "deregister"])
def test_agent_id_mismatch(kind: str) -> None:
    """A body naming another agent than its routing key is rejected as agent-id-mismatch."""
    body = {"register": register_body, "heartbeat": heartbeat_body, "deregister": deregister_body}
    rejected = rejection(f"agent.other.{kind}", dumps(body[kind]()))
    assert rejected.reason == "agent-id-mismatch"
    assert "other" in rejected.detail
    assert "weather" in rejected.detail


def test_card_too_large() -> None:
    """A card over the configured limit is rejected as card-too-large."""
    limits = Limits(max_card_bytes=len(card_bytes(CARD)) - 1)
    rejected = rejection("agent.weather.register", dumps(register_body()), limits)
    assert rejected.reason == "card-too-large"


def test_card_too_large_default_limit() -> None:
    """A card over the default 64 KiB is rejected as card-too-large."""
    big = dict(CARD, padding="x" * (64 * 1024))
    rejected = rejection("agent.weather.register", dumps(register_body(card=big)))
    assert rejected.reason == "card-too-large"


@pytest.mark.parametrize(
    "skills",
    [
        [{"id": "s", "tags": [1, 2]}],
        [{"id": "s", "tags": "weather"}],
        [{"id": "s", "name": 5}],
        [{"id": "s", "tags": [None]}],
    ],
)
def test_invalid_card(skills: list[dict[str, Any]]) -> None:
    """A card whose skills cannot be read (e.g. non-string tags) is rejected as invalid-card."""
    card = dict(CARD, skills=skills)
    assert (
        rejection("agent.weather.register", dumps(register_body(card=card))).reason
        == "invalid-card"
    )


def test_rejected_message_has_reason_and_detail() -> None:
    """Rejected's message is `reason: detail`, and the detail names the failing field."""
    rejected = rejection("agent.weather.register", dumps(register_body(seq=0)))
    assert str(rejected).startswith("invalid-schema: ")
    assert "seq" in rejected.detail
    assert Rejected("forbidden").detail == ""
    assert str(Rejected("forbidden")) == "forbidden"


def test_rejection_detail_does_not_echo_the_body() -> None:
    """The detail of a schema error does not echo the offending input back."""
    secret = "S3CRET-VALUE-THAT-MUST-NOT-LEAK"
    rejected = rejection(f"agent.{secret}.register", dumps(register_body(agent_id=secret)))
    assert rejected.reason == "invalid-schema"
    assert secret not in rejected.detail


@pytest.mark.parametrize("field", ["ttl_s", "interval_s", "idle_ttl_s"])
@pytest.mark.parametrize("value", [1e306, "Infinity", "NaN"])
def test_absurd_durations_are_rejected_as_invalid_schema(field: str, value: object) -> None:
    """A duration that is not finite or beyond ten years is a schema error, not a crash."""
    body = dumps(register_body(**{field: 0.0}))
    body = body.replace(f'"{field}":0.0'.encode(), f'"{field}":{value}'.encode())
    assert rejection("agent.weather.register", body).reason == "invalid-schema"


def test_card_with_big_integer_is_rejected() -> None:
    """A card with an integer orjson cannot serialise is rejected as invalid-card."""
    body = dumps(register_body(card={"name": "w"})).replace(
        b'{"name":"w"}', b'{"name":"w","n":18446744073709551616}'
    )
    assert rejection("agent.weather.register", body).reason == "invalid-card"


# --- property ----------------------------------------------------------------------------------

routing_keys = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda agent, kind: f"agent.{agent}.{kind}",
        st.sampled_from(["weather", "other", "", "W"]),
        st.sampled_from(["register", "heartbeat", "deregister", "nope"]),
    ),
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_like = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def _near_valid(kind: str, mutation: dict[str, Any]) -> bytes:
    base = {"register": register_body, "heartbeat": heartbeat_body, "deregister": deregister_body}
    body = base[kind]()
    body.update(mutation)
    return dumps(body)


@settings(max_examples=300)
@given(
    routing_key=routing_keys, body=st.binary(max_size=300), user=st.none() | st.text(max_size=10)
)
def test_arbitrary_bytes_only_ever_rejected(
    routing_key: str, body: bytes, user: str | None
) -> None:
    """Whatever bytes arrive under whatever key, prepare returns Prepared or raises Rejected."""
    result: Prepared | Rejected
    try:
        result = prepare(routing_key, body, user, Limits(max_card_bytes=256))
    except Rejected as rejected:
        result = rejected
    if isinstance(result, Rejected):
        assert result.reason in REASONS
    else:
        assert result.kind in {"register", "heartbeat", "deregister"}


@settings(max_examples=300)
@given(
    kind=st.sampled_from(["register", "heartbeat", "deregister"]),
    mutation=st.dictionaries(
        st.sampled_from(
            ["seq", "ttl_s", "card", "labels", "endpoints", "reason", "card_digest", "extra"]
        ),
        json_like,
        max_size=3,
    ),
)
def test_near_valid_bodies_only_ever_rejected(kind: str, mutation: dict[str, Any]) -> None:
    """Valid bodies with arbitrary JSON in some fields are Prepared or Rejected, nothing else."""
    body = _near_valid(kind, mutation)
    try:
        result = prepare(f"agent.weather.{kind}", body, None, Limits(max_card_bytes=512))
    except Rejected:
        return
    assert result.kind == kind
