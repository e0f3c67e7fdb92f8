"""API keys without Redis: the token format, the stored digest, what a key may create and write,
and the token buckets, on a clock the test moves."""

from __future__ import annotations

import hashlib

import pytest

from agentroster.api.auth import Forbidden, Principal, Scope, Unauthenticated, authorize_write
from agentroster.api.rate_limit import RateLimiter
from agentroster.store.api_keys import (
    InvalidKey,
    KeyRecord,
    check_new_key,
    new_token,
    parse_token,
    secret_digest,
)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_token_parses_back_to_its_id_and_secret() -> None:
    """`ar_<id>_<secret>`: the id is 16 hex digits, the secret 256 random bits (43 base64url)."""
    key_id, secret, token = new_token()
    assert token == f"ar_{key_id}_{secret}"
    assert parse_token(token) == (key_id, secret)
    assert len(key_id) == 16
    assert len(secret) == 43
    assert len({new_token()[1] for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ar_",
        "ar_0123456789abcdef",
        "ar_0123456789abcdef_",
        "ar_0123456789ABCDEF_" + "a" * 43,  # upper-case id
        "ar_0123456789abcde_" + "a" * 43,  # short id
        "xx_0123456789abcdef_" + "a" * 43,
        "ar_0123456789abcdef_" + "a" * 42,
        "ar_0123456789abcdef_" + "a" * 44,
        "ar_0123456789abcdef_" + "ä" * 43,
        "ar_0123456789abcdef_" + "a" * 42 + "\n",
        "ar_0123456789abcdef_" + "a" * 10_000,
        "Bearer ar_0123456789abcdef_" + "a" * 43,
    ],
)
def test_anything_but_a_well_formed_token_parses_to_none(token: str) -> None:
    """Malformed tokens are refused by their shape alone (no lookup, no exception)."""
    assert parse_token(token) is None


def test_the_stored_digest_is_sha256_of_the_secret_and_matches_only_it() -> None:
    """Redis keeps the SHA-256 of the secret: the record matches its secret and nothing else."""
    _, secret, _ = new_token()
    assert secret_digest(secret) == hashlib.sha256(secret.encode()).hexdigest()
    record = KeyRecord("0" * 16, "p", "agent", ("a",), 0.0, None, None, secret_digest(secret))
    assert record.matches(secret)
    assert not record.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert "sha256" not in str(record.public())
    assert secret not in str(record.public())


@pytest.mark.parametrize(
    ("principal", "scope", "patterns", "description", "complaint"),
    [
        ("", "agent", ["a"], None, "principal"),
        ("has space", "agent", ["a"], None, "principal"),
        ("x" * 64, "agent", ["a"], None, "principal"),
        ("team:x", "agent", ["a"], None, "principal"),
        ("team", "root", [], None, "scope"),
        ("team", "agent", [], None, "at least one"),
        ("team", "agent", ["Weather"], None, "not an agent id pattern"),
        ("team", "agent", ["weather.*"], None, "not an agent id pattern"),
        ("team", "agent", ["-x"], None, "matches no valid agent id"),
        ("team", "agent", [f"a{i}" for i in range(33)], None, "at most 32"),
        ("team", "read", ["a"], None, "agent keys"),
        ("team", "admin", ["*"], None, "agent keys"),
        ("team", "read", [], "line\nbreak", "printable"),
        ("team", "read", [], "x" * 257, "at most 256"),
    ],
)
def test_keys_that_cannot_be_created_say_why(
    principal: str, scope: str, patterns: list[str], description: str | None, complaint: str
) -> None:
    """Principal names, scopes, patterns (the broker permissions' glob syntax), descriptions."""
    with pytest.raises(InvalidKey, match=complaint):
        check_new_key(principal, scope, patterns, description)


def test_valid_keys_pass_the_checks() -> None:
    """One of each scope."""
    check_new_key("weather-team", "agent", ["weather-*", "fore?ast"], "the weather agents")
    check_new_key("ops@example.com", "admin", [], None)
    check_new_key("dashboards", "read", [], None)


def test_an_agent_key_writes_only_what_its_patterns_match() -> None:
    """`*` and `?` as in the broker permissions; 403 names the key, the agent and its patterns."""
    key = Principal("k1", "team", Scope.AGENT, ("weather-*", "fore?ast"))
    assert authorize_write(key, "weather-eu") is key
    assert authorize_write(key, "forecast") is key
    with pytest.raises(Forbidden) as refused:
        authorize_write(key, "billing")
    assert refused.value.status == 403
    assert "billing" in refused.value.message
    assert "weather-*" in refused.value.message
    assert refused.value.details == {
        "agent_id": "billing",
        "scope": "agent",
        "agent_patterns": ["weather-*", "fore?ast"],
    }


def test_a_read_key_writes_nothing_and_no_key_is_401() -> None:
    """A read key lacks the scope (403 says so); without a key, 401 with WWW-Authenticate."""
    with pytest.raises(Forbidden, match="scope 'read'"):
        authorize_write(Principal("k2", "dash", Scope.READ), "weather")
    with pytest.raises(Unauthenticated) as missing:
        authorize_write(None, "weather")
    assert missing.value.headers == {"WWW-Authenticate": 'Bearer realm="agentroster"'}
    assert authorize_write(Principal("k3", "ops", Scope.ADMIN), "anything").scope is Scope.ADMIN


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    """Burst at once, then one request per 1/rate seconds; the answer is the wait."""
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.take("k") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.take("k") == 0.0
    clock.now += 100
    assert [limiter.take("k") for _ in range(4)][-1] > 0  # refills to the burst, not beyond


def test_buckets_are_per_key_and_bounded_in_number() -> None:
    """One greedy key does not slow another; past `max_buckets` the oldest is forgotten."""
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_buckets=3, clock=clock)
    assert limiter.take("greedy") == 0.0
    assert limiter.take("greedy") > 0
    assert limiter.take("other") == 0.0
    assert limiter.wait_s("greedy") > 0
    assert limiter.wait_s("fresh") == 0.0
    for name in ("a", "b", "c", "d"):
        limiter.take(name)
    assert len(limiter) == 3
