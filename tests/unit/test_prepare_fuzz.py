"""Property-based fuzzing of command bodies against `prepare()` under small limits.

Bodies are built from the shapes a register takes (cards with skills, tags and interfaces,
explicit endpoints, labels, TTLs), filled with hostile values: control characters, urls of
every scheme, NaN and Infinity, huge numbers, long strings, too many of everything. The
properties: nothing but `Rejected` is ever raised, a rejection has a known reason, and whatever
is accepted stays within every limit and is stored exactly as it came.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentroster.contracts import DEAD_LETTER_REASONS
from agentroster.registry.prepare import Limits, Prepared, Rejected, TtlBounds, prepare

LIMITS = Limits(
    ttl=TtlBounds(5, 3600),
    idle_ttl=TtlBounds(0.001, 600),
    max_card_bytes=3000,
    max_message_bytes=6000,
    max_registration_bytes=7000,
    max_endpoints=3,
    max_skills=4,
    max_index_terms=10,
    max_term_bytes=64,
)
#: Reasons prepare() may give (forbidden and internal-error come from elsewhere).
PREPARE_REASONS = set(DEAD_LETTER_REASONS) - {"forbidden", "internal-error"}
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def mostly(
    valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Valid three times in four: enough bodies get through to check what is accepted."""
    return st.integers(0, 3).flatmap(lambda n: hostile if n == 0 else valid)


printable = st.text(alphabet=st.sampled_from([*"abcXYZ-_.é☀ "]), max_size=70)
hostile_text = st.text(
    alphabet=st.sampled_from([*"abcXYZ-_.:=/ é☀", "\n", "\r", "\t", "\x00", "\x85", "\x7f"]),
    max_size=30,
) | st.text(max_size=8)
long_text = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "\n"]), st.integers(0, 200))
any_text = hostile_text | long_text
numbers = (
    st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324, 0.0])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=10,
)
SCHEMES = ["http", "https", "HTTPS", "amqp", "amqps", "javascript", "JavaScript", "data"]
SCHEMES += ["file", "sb", "grpc+tls", "ws", "", "1bad", "vbscript", "blob"]
schemes = st.sampled_from(SCHEMES)
urls = st.builds(
    lambda scheme, sep, host, path: f"{scheme}{sep}{host}{path}",
    schemes,
    st.sampled_from(["://", ":", ":///", ""]),
    st.sampled_from(["w.example", "b.example:5672", "", "[::1", "h\nx"]),
    st.sampled_from(["/a2a", "/?queue=q", "/?exchange=e&routing_key=k", "", "/ x"]) | hostile_text,
)
endpoints = st.fixed_dictionaries(
    {
        "transport": st.sampled_from(["http", "HTTP", "amqp", "sb", "", "x\n"]) | hostile_text,
        "protocol": st.sampled_from(["a2a", "mcp"]) | hostile_text,
    },
    optional={
        "url": urls,
        "exchange": any_text,
        "routing_key": any_text,
        "binding": hostile_text,
        "protocol_version": hostile_text,
    },
)
skills = st.fixed_dictionaries(
    {"id": mostly(printable, any_text | numbers)},
    optional={
        "name": any_text,
        "tags": st.lists(mostly(printable, any_text), max_size=4),
        "x": json_values,
    },
)
cards = st.fixed_dictionaries(
    {},
    optional={
        "name": any_text,
        "description": any_text,
        "version": any_text,
        "skills": st.lists(skills, max_size=6) | json_values,
        "url": urls,
        "supportedInterfaces": st.lists(st.fixed_dictionaries({"url": urls}), max_size=5),
        "x-extra": mostly(st.integers() | printable, json_values),
    },
)


seconds = mostly(st.floats(0.0001, 10 * 365 * 24 * 3600), numbers)
FIELDS = ["agent_id", "instance_id", "seq", "ttl_s", "idle_ttl_s", "card", "endpoints"]
FIELDS += ["labels", "card_digest", "reason", "sent_at", "extra"]
registers = st.fixed_dictionaries(
    {
        "agent_id": st.just("weather"),
        "instance_id": mostly(st.just("w-1"), st.sampled_from(["w\n1", "w 1", ""])),
        "seq": mostly(st.integers(1, 1000), st.integers(-1, 2**60)),
        "ttl_s": seconds,
        "card": cards,
        "sent_at": st.just("2025-01-01T12:00:00Z"),
    },
    optional={
        "endpoints": st.lists(endpoints, max_size=5),
        "labels": st.dictionaries(mostly(printable, any_text), mostly(printable, any_text)),
        "idle_ttl_s": seconds,
        "interval_s": seconds,
    },
)

#: Well-formed registrations of every size, around every limit of `LIMITS`.
sizeable = st.fixed_dictionaries(
    {
        "agent_id": st.just("weather"),
        "instance_id": st.just("w-1"),
        "seq": st.just(1),
        "ttl_s": st.just(30),
        "card": st.fixed_dictionaries(
            {
                "name": printable,
                "description": st.builds(lambda n: "d" * n, st.integers(0, 4000)),
                "skills": st.lists(
                    st.fixed_dictionaries(
                        {"id": printable, "tags": st.lists(printable, max_size=4)}
                    ),
                    max_size=7,
                ),
            }
        ),
        "sent_at": st.just("2025-01-01T12:00:00Z"),
    },
    optional={
        "endpoints": st.lists(
            st.builds(
                lambda n, size: {
                    "transport": "http",
                    "protocol": "a2a",
                    "url": f"https://w.example/{n}/{'p' * size}",
                },
                st.integers(0, 9),
                st.integers(0, 2000),
            ),
            max_size=5,
        ),
        "labels": st.dictionaries(printable.filter(bool), printable, max_size=8),
    },
)


def _within_limits(body: dict[str, Any], raw: bytes, prepared: Prepared) -> None:
    """Check an accepted registration against every limit and every value rule."""
    assert len(raw) <= LIMITS.max_message_bytes
    assert len(prepared.card) <= LIMITS.max_card_bytes
    assert prepared.stored_bytes() <= LIMITS.max_registration_bytes
    # the card is stored exactly as it came: no NaN turned into null, no number changed
    assert orjson.loads(prepared.card) == body["card"]
    view = orjson.loads(prepared.view)
    assert len(view["endpoints"]) <= LIMITS.max_endpoints
    assert len(view["skills"]) <= LIMITS.max_skills
    terms = prepared.terms.split("\n") if prepared.terms else []
    assert len(terms) <= LIMITS.max_index_terms
    for term in terms:
        assert len(term.encode()) <= LIMITS.max_term_bytes
        assert not CONTROL.search(term)
    for key, value in view["labels"].items():
        assert not CONTROL.search(key + value)
    for endpoint in view["endpoints"]:
        for value in endpoint.values():
            assert value is None or not CONTROL.search(value)
        if endpoint["url"] is not None:
            scheme = urlsplit(endpoint["url"]).scheme.lower()
            assert scheme not in {"javascript", "vbscript", "data", "file", "blob"}
            if endpoint["transport"].lower() == "http":
                assert scheme in {"http", "https"}
            if endpoint["transport"].lower() == "amqp":
                assert scheme in {"amqp", "amqps"}
    assert LIMITS.ttl.min_s * 1000 <= prepared.ttl_ms <= LIMITS.ttl.max_s * 1000
    assert 0 <= prepared.idle_ttl_ms <= LIMITS.idle_ttl.max_s * 1000
    if "idle_ttl_s" in body:
        assert prepared.idle_ttl_ms >= 1


def _outcome(routing_key: str, raw: bytes) -> Prepared | Rejected:
    try:
        return prepare(routing_key, raw, None, LIMITS)
    except Rejected as rejected:
        return rejected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=registers | sizeable)
def test_register_bodies_are_rejected_or_within_every_limit(body: dict[str, Any]) -> None:
    """Nothing but `Rejected` escapes prepare(); what is accepted respects every limit."""
    raw = json.dumps(body, allow_nan=True).encode()  # NaN and Infinity as bare literals
    result = _outcome("agent.weather.register", raw)
    if isinstance(result, Rejected):
        assert result.reason in PREPARE_REASONS
        assert len(result.detail) <= 1000
        event(result.reason)
    else:
        event("accepted")
        _within_limits(body, raw, result)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["register", "heartbeat", "deregister"]),
    body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8),
    padding=st.integers(0, 7000),
)
def test_any_command_body_is_prepared_or_rejected(
    kind: str, body: dict[str, Any], padding: int
) -> None:
    """Arbitrary JSON objects of any size, under any kind, never raise anything but Rejected;
    one over the message limit is refused for its size."""
    raw = (json.dumps(body, allow_nan=True) + " " * padding).encode()
    result = _outcome(f"agent.weather.{kind}", raw)
    if isinstance(result, Rejected):
        assert result.reason in PREPARE_REASONS
        if len(raw) > LIMITS.max_message_bytes:
            assert result.reason == "message-too-large"
    else:
        assert result.kind == kind
        assert len(raw) <= LIMITS.max_message_bytes


def test_the_fuzzer_reaches_acceptance_and_every_size_reason() -> None:
    """A sanity check of the strategies: examples of each outcome exist among them."""
    accepted = {
        "agent_id": "weather",
        "instance_id": "w-1",
        "seq": 1,
        "ttl_s": 30,
        "card": {"name": "é", "skills": [{"id": "s", "tags": ["t"]}]},
        "labels": {"a": "b"},
        "sent_at": "2025-01-01T12:00:00Z",
    }
    raw = json.dumps(accepted).encode()
    _within_limits(accepted, raw, prepare("agent.weather.register", raw, None, LIMITS))
    assert unicodedata.category("\x85") == "Cc"  # C1 controls are control characters too
