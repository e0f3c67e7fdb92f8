"""What one registration may cost, and values validated rather than changed (issue 10).

Every limit of `Limits` rejects with its own reason and names its setting in the detail; every
value that cannot be stored as it came (NaN, a control character, a url a client would run) is
rejected with a clear detail instead of being stored as something else.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentroster.contracts import DEAD_LETTER_REASONS
from agentroster.registry.prepare import (
    TERM_COST_BYTES,
    Limits,
    Prepared,
    Rejected,
    TtlBounds,
    non_finite_at,
    prepare,
)
from agentroster.settings import Settings
from agentroster.worker.batcher import batch_length
from tests.unit.test_prepare import CARD, dumps, heartbeat_body, register_body

KEY = "agent.weather.register"


def rejected(
    body: dict[str, Any] | bytes, limits: Limits | None = None, key: str = KEY
) -> Rejected:
    raw = body if isinstance(body, bytes) else dumps(body)
    with pytest.raises(Rejected) as caught:
        prepare(key, raw, None, limits or Limits())
    return caught.value


def accepted(body: dict[str, Any], limits: Limits | None = None) -> Prepared:
    return prepare(KEY, dumps(body), None, limits or Limits())


def http(n: int, **fields: Any) -> dict[str, Any]:
    return {"transport": "http", "protocol": "a2a", "url": f"https://w.example/{n}", **fields}


def skills(count: int, tags_each: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"s{n}", "name": f"S{n}", "tags": [f"t{n}-{m}" for m in range(tags_each)]}
        for n in range(count)
    ]


# --- the size of a registration ----------------------------------------------------------------


def test_the_new_reasons_are_in_the_contract() -> None:
    """Both size reasons are values of `DeadLetterReason` (so the AsyncAPI document lists them)."""
    assert {"message-too-large", "registration-too-large"} <= set(DEAD_LETTER_REASONS)


def test_a_message_over_the_limit_is_rejected_before_parsing() -> None:
    """A body over `max_message_bytes` is rejected unread, whatever it holds, for any kind."""
    limits = Limits(max_message_bytes=1000)
    for key in (KEY, "agent.weather.heartbeat"):
        found = rejected(b"{" + b" " * 1000 + b"}", limits, key)
        assert found.reason == "message-too-large"
        assert "1002 bytes" in found.detail
        assert "AGENTROSTER_MAX_MESSAGE_BYTES" in found.detail


def test_the_5_mb_exchange_of_the_issue_is_rejected() -> None:
    """The issue's 5 MB `exchange` string no longer escapes the card limit."""
    endpoint = {"transport": "amqp", "protocol": "a2a", "exchange": "x" * 5_000_000}
    found = rejected(register_body(endpoints=[{**endpoint, "routing_key": "k"}]))
    assert found.reason == "message-too-large"
    # and, under a message limit that lets it through, the contract's 255 characters stop it
    found = rejected(
        register_body(endpoints=[{**endpoint, "exchange": "x" * 256, "routing_key": "k"}])
    )
    assert found.reason == "invalid-schema"
    assert "endpoints.0.exchange" in found.detail


def test_the_2000_endpoints_of_the_issue_are_rejected() -> None:
    """More endpoints than the contract's 64 are a schema error, more than the setting's
    limit (default 32) a registration-too-large naming it."""
    assert rejected(register_body(endpoints=[http(n) for n in range(2000)])).reason == (
        "invalid-schema"
    )
    found = rejected(register_body(endpoints=[http(n) for n in range(33)]))
    assert found.reason == "registration-too-large"
    assert "33 endpoints" in found.detail
    assert "AGENTROSTER_MAX_ENDPOINTS" in found.detail
    assert accepted(register_body(endpoints=[http(n) for n in range(32)])).kind == "register"


def test_endpoints_derived_from_a_card_count_too() -> None:
    """An A2A card that declares more interfaces than allowed is over the endpoint limit."""
    card = {
        "name": "w",
        "supportedInterfaces": [{"url": f"https://w.example/{n}"} for n in range(5)],
    }
    found = rejected(register_body(card=card), Limits(max_endpoints=4))
    assert found.reason == "registration-too-large"
    assert "5 endpoints" in found.detail


def test_skills_over_the_limit_are_rejected() -> None:
    """More skills than `max_skills` is registration-too-large naming AGENTROSTER_MAX_SKILLS."""
    card = {"name": "w", "skills": skills(11)}
    found = rejected(register_body(card=card), Limits(max_skills=10))
    assert found.reason == "registration-too-large"
    assert "AGENTROSTER_MAX_SKILLS" in found.detail
    assert accepted(register_body(card={"name": "w", "skills": skills(10)}), Limits(max_skills=10))


def test_index_terms_over_the_limit_are_rejected() -> None:
    """Skill ids, tags, protocols, transports and labels count as index terms together."""
    card = {"name": "w", "skills": skills(4, tags_each=2)}  # 4 ids + 8 tags
    labels = {"a": "1", "b": "2"}
    body = register_body(card=card, labels=labels, endpoints=[http(0)])  # + protocol, transport
    assert len(accepted(body, Limits(max_index_terms=16)).terms.split("\n")) == 16
    found = rejected(body, Limits(max_index_terms=15))
    assert found.reason == "registration-too-large"
    assert "16 index terms" in found.detail
    assert "AGENTROSTER_MAX_INDEX_TERMS" in found.detail


@pytest.mark.parametrize(
    "card",
    [
        {"name": "w", "skills": [{"id": "s" * 600}]},
        {"name": "w", "skills": [{"id": "s", "tags": ["t" * 600]}]},
        {"name": "w", "skills": [{"id": "é" * 300}]},  # 600 bytes in UTF-8
    ],
)
def test_a_term_over_the_length_limit_is_rejected(card: dict[str, Any]) -> None:
    """A skill id or tag whose index term is longer than `max_term_bytes` (UTF-8) is refused."""
    found = rejected(register_body(card=card))
    assert found.reason == "registration-too-large"
    assert "AGENTROSTER_MAX_TERM_BYTES" in found.detail


def test_a_label_at_the_contract_limits_fits_the_default_term_length() -> None:
    """The longest label the contract allows is one index term within the default limit."""
    assert accepted(register_body(labels={"k" * 63: "v" * 256})).kind == "register"


def test_the_stored_size_of_a_registration_is_bounded() -> None:
    """Card, view, terms and text together are bounded by `max_registration_bytes`."""
    body = register_body(
        endpoints=[http(n, url=f"https://w.example/{n}/{'p' * 1500}") for n in range(8)]
    )
    prepared = accepted(body)
    limit = prepared.stored_bytes() - 1
    found = rejected(body, Limits(max_registration_bytes=limit))
    assert found.reason == "registration-too-large"
    assert f"the limit is {limit}" in found.detail
    assert "AGENTROSTER_MAX_REGISTRATION_BYTES" in found.detail


def test_the_card_limit_is_named_in_its_detail() -> None:
    """card-too-large says which setting to change."""
    found = rejected(register_body(), Limits(max_card_bytes=10))
    assert found.reason == "card-too-large"
    assert "AGENTROSTER_MAX_CARD_BYTES" in found.detail


def test_settings_carry_every_limit_to_the_worker() -> None:
    """`Settings.limits()` is what the worker applies: every setting reaches its field."""
    limits = Settings(
        max_message_bytes=70_000,
        max_registration_bytes=80_000,
        max_endpoints=3,
        max_skills=4,
        max_index_terms=5,
        max_term_bytes=100,
        idle_ttl_max_s=60,
        ttl_min_s=1,
        ttl_max_s=120,
    ).limits()
    assert (limits.max_message_bytes, limits.max_registration_bytes) == (70_000, 80_000)
    assert (limits.max_endpoints, limits.max_skills, limits.max_index_terms) == (3, 4, 5)
    assert limits.max_term_bytes == 100
    assert limits.idle_ttl.max_s == 60
    assert limits.ttl == TtlBounds(1, 120)


@pytest.mark.parametrize("name", ["max_message_bytes", "max_registration_bytes"])
def test_a_size_limit_below_the_card_limit_is_refused(name: str) -> None:
    """No card as large as the card limit could pass a smaller message or registration limit."""
    with pytest.raises(ValueError, match=f"AGENTROSTER_{name.upper()}"):
        Settings.model_validate({name: 1000})


def test_the_endpoint_setting_cannot_exceed_the_contract() -> None:
    """The contract allows 64 endpoints; the setting can lower that, not raise it."""
    with pytest.raises(ValueError, match="max_endpoints"):
        Settings(max_endpoints=65)


# --- idle_ttl_s ----------------------------------------------------------------------------------


def test_idle_ttl_is_lowered_to_its_ceiling_as_ttl_is() -> None:
    """10 years of idle is lowered to the ceiling (default 7 days), like `ttl_s`."""
    ten_years = 10 * 365 * 24 * 3600
    assert accepted(register_body(idle_ttl_s=ten_years)).idle_ttl_ms == 7 * 24 * 3600 * 1000
    limits = Limits(idle_ttl=TtlBounds(min_s=0.001, max_s=60))
    assert accepted(register_body(idle_ttl_s=ten_years), limits).idle_ttl_ms == 60_000
    assert accepted(register_body(idle_ttl_s=0.5)).idle_ttl_ms == 500
    assert accepted(register_body()).idle_ttl_ms == 0  # not set: the agent never idles


def test_a_tiny_idle_ttl_still_means_idle() -> None:
    """An idle TTL that rounds to 0 ms is raised to 1 ms, not turned into "never idle"."""
    assert accepted(register_body(idle_ttl_s=0.0001)).idle_ttl_ms == 1


# --- values validated, never changed -----------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_a_card_are_rejected(number: str) -> None:
    """NaN and Infinity (or a number too large for a double) are not JSON: the card would be
    stored with null instead. The detail names where."""
    body = json.dumps(register_body(card={**CARD, "x": {"y": [1, "@"]}})).replace('"@"', number)
    found = rejected(body.encode())
    assert found.reason == "invalid-card"
    assert "x.y.1" in found.detail
    assert "NaN and Infinity" in found.detail


def test_non_finite_at_walks_without_recursion() -> None:
    """The walk is iterative and finds the path, or None for a finite value."""
    deep: Any = float("nan")
    for _ in range(5000):
        deep = [deep]
    assert non_finite_at(deep) == ".".join(["0"] * 5000)
    assert non_finite_at({"a": [1, 2.5, {"b": None}]}) is None
    assert non_finite_at(float("inf")) == ""


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_in_labels_are_rejected(char: str) -> None:
    """A label key or value with a control character is an invalid-schema, never indexed as
    something else (a newline used to be indexed as a space)."""
    for labels in ({f"te{char}am": "geo"}, {"team": f"geo{char}eu"}):
        found = rejected(register_body(labels=labels))
        assert found.reason == "invalid-schema"
        assert "labels" in found.detail


@pytest.mark.parametrize("char", ["\n", "\x00", "\x85"])
def test_control_characters_in_skill_ids_and_tags_are_rejected(char: str) -> None:
    """Skill ids and tags are index terms: a control character makes the card invalid."""
    for skill in ({"id": f"fore{char}cast"}, {"id": "forecast", "tags": [f"wea{char}ther"]}):
        found = rejected(register_body(card={"name": "w", "skills": [skill]}))
        assert found.reason == "invalid-card"
        assert "skills" in found.detail


def test_unicode_labels_and_free_text_stay_allowed() -> None:
    """Non-ASCII labels are fine, and a description may have newlines (it is not a term)."""
    card = {**CARD, "description": "Line one\nline two\ttabbed"}
    prepared = accepted(register_body(card=card, labels={"équipe": "météo ☀"}))
    assert "label:équipe=météo ☀" in prepared.terms.split("\n")


@pytest.mark.parametrize("instance_id", ["w\n1", "w 1", "w\x001", "w\u20281"])
def test_control_characters_in_ids_are_rejected(instance_id: str) -> None:
    """Agent and instance ids have strict patterns: no control character, no space."""
    assert rejected(register_body(instance_id=instance_id)).reason == "invalid-schema"
    assert rejected(
        heartbeat_body(instance_id=instance_id), key="agent.weather.heartbeat"
    ).reason == ("invalid-schema")


@pytest.mark.parametrize(
    ("endpoint", "said"),
    [
        (http(0, url="javascript:alert(1)"), "http:// or https://"),
        (http(0, url="data:text/html,<script>"), "http:// or https://"),
        (http(0, url="file:///etc/passwd"), "http:// or https://"),
        (http(0, url="ftp://w.example/"), "http:// or https://"),
        (http(0, url="https:///no-host"), "http:// or https://"),
        (http(0, url="/relative/a2a"), "http:// or https://"),
        ({"transport": "amqp", "protocol": "a2a", "url": "https://b/"}, "amqp:// or amqps://"),
        ({"transport": "sb", "protocol": "a2a", "url": "javascript:x"}, "'javascript'"),
        ({"transport": "sb", "protocol": "a2a", "url": "DATA:text/plain,x"}, "'data'"),
        ({"transport": "sb", "protocol": "a2a", "url": "FILE:/etc/x"}, "'file'"),
        ({"transport": "sb", "protocol": "a2a", "url": "no-scheme/x"}, "absolute URI"),
        (http(0, url="https://w.example/a\nb"), "endpoints.0.url"),
        (http(0, url="https://w.example/a b"), "endpoints.0.url"),
    ],
)
def test_endpoint_urls_must_fit_their_transport(endpoint: dict[str, Any], said: str) -> None:
    """An explicit endpoint's url scheme fits its transport; anything else is invalid-schema."""
    found = rejected(register_body(endpoints=[endpoint]))
    assert found.reason == "invalid-schema"
    assert said in found.detail


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "/relative"]
)
def test_card_urls_must_fit_their_transport_too(url: str) -> None:
    """A url in an A2A card that derives a dangerous or relative endpoint is an invalid-card."""
    card = {"name": "w", "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC"}]}
    assert rejected(register_body(card=card)).reason == "invalid-card"


@pytest.mark.parametrize(
    "endpoint",
    [
        http(0, url="http://w.example:8080/a2a"),
        http(0, url="HTTPS://W.example/a2a"),
        {"transport": "HTTP", "protocol": "a2a", "url": "https://w.example/"},
        {"transport": "amqp", "protocol": "a2a", "url": "amqps://b.example/?queue=q"},
        {"transport": "amqp", "protocol": "a2a", "exchange": "", "routing_key": "q"},
        {"transport": "azure-service-bus", "protocol": "a2a", "url": "sb://ns.example/q"},
        {"transport": "grpc", "protocol": "a2a", "url": "grpc+tls://w.example:443"},
        {"transport": "websocket", "protocol": "custom", "url": "wss://w.example/ws"},
    ],
)
def test_fitting_urls_are_accepted(endpoint: dict[str, Any]) -> None:
    """http(s) for http (any case), amqp(s) for amqp, and other transports any safe scheme."""
    assert accepted(register_body(endpoints=[endpoint])).kind == "register"


# --- batches bounded in cost ---------------------------------------------------------------------


def test_a_registrations_cost_counts_its_bytes_and_its_index_terms() -> None:
    """`cost()` is what it stores plus TERM_COST_BYTES per index term; commands without terms
    cost what they store (a heartbeat: nothing)."""
    prepared = accepted(register_body(labels={"a": "1"}))
    terms = len(prepared.terms.split("\n"))
    assert prepared.cost() == prepared.stored_bytes() + terms * TERM_COST_BYTES
    heartbeat = prepare("agent.weather.heartbeat", dumps(heartbeat_body()), None, Limits())
    assert heartbeat.cost() == heartbeat.stored_bytes() == 0


def test_a_batch_ends_at_the_command_whose_cost_reaches_the_bound() -> None:
    """Up to `batch_max` commands, none more once the bound is reached, and never none."""
    one = accepted(register_body())
    cost = one.cost()
    assert batch_length([one] * 10, 500, cost * 3) == 3
    assert batch_length([one] * 10, 500, cost * 3 + 1) == 4
    assert batch_length([one] * 10, 2, cost * 100) == 2
    assert batch_length([one] * 10, 500, 1) == 1  # one alone over the bound still goes
    assert batch_length([None] * 10, 500, 1) == 10  # rejected commands cost nothing
    assert batch_length([one] * 3, 500, cost * 100) == 3
