"""Signed A2A cards without Redis or a broker: the verdict of a card signed with a key made in
the test (trust store, or its `jku` served by a local server through the guard), tampered,
unsigned, and hostile signatures and key sets; the signature a registration is prepared with;
the `signature` filter in memory; a card signed by a2a-sdk's own signer."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agentroster.api.read_model.index import entry_from_record, record_from_event
from agentroster.contracts import Register, agent_view
from agentroster.contracts.commands import command_json
from agentroster.registry.card_signature import MAX_SIGNATURES, Reason, Verdict
from agentroster.registry.prepare import Limits, prepare
from agentroster.registry.terms import Filters
from agentroster.settings import Settings
from agentroster.store.outbox import OutboxEvent
from agentroster.store.redis_store import VerifyResult
from agentroster.worker.card_fetch import CardFetcher, FetchPolicy
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.net_guard import parse_networks
from agentroster.worker.signature_check import SignatureChecker, SignatureVerifier, check_for
from agentroster.worker.signature_keys import KeySource, load_jwks
from tests.card_server import CardServer, Reply
from tests.signing import SigningKey, encode_header, key_set

JWKS = "/jwks.json"
LOCAL = parse_networks(["127.0.0.0/8"])


def card(url: str = "https://weather.example/a2a", name: str = "Weather") -> dict[str, Any]:
    """An A2A v1.0 card with one interface at `url`."""
    return {
        "name": name,
        "description": "Forecasts, señor",  # non-ASCII: JCS keeps it as UTF-8
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {},
        "skills": [{"id": "forecast", "name": "Forecast", "description": "d", "tags": ["w"]}],
    }


def hosts_of(document: dict[str, Any]) -> frozenset[str]:
    """The endpoint hosts the worker gives the checker, from a prepared registration."""
    body = Register(
        agent_id="weather",
        instance_id="i-1",
        seq=1,
        ttl_s=30,
        card=document,
        sent_at=datetime.now(UTC),
    )
    return check_for(prepare("agent.weather.register", command_json(body), None, Limits())).hosts


async def verdict_of(
    document: dict[str, Any],
    trusted: Sequence[SigningKey] = (),
    fetcher: CardFetcher | None = None,
) -> Verdict:
    """The checker's verdict with these keys trusted (and `fetcher` for `jku`)."""
    checker = SignatureChecker(
        KeySource(load_jwks(orjson.dumps(key_set(*trusted)).decode()), fetcher)
    )
    try:
        return await checker.verdict(orjson.dumps(document), hosts_of(document))
    finally:
        await checker.keys.aclose()
        checker.close()


@pytest.fixture
async def server() -> AsyncIterator[CardServer]:
    """A JWKS server on 127.0.0.1."""
    async with CardServer() as running:
        yield running


def fetcher(allowed: Any = LOCAL, **policy: Any) -> CardFetcher:
    """The worker's jku fetcher: the guard's policy, no redirects."""
    return CardFetcher(FetchPolicy(allowed=tuple(allowed), max_redirects=0, **policy))


@pytest.mark.parametrize("kind", ["EC", "RSA", "OKP"])
async def test_signed_with_a_trusted_key_is_valid(kind: str) -> None:
    """ES256, RS256 and EdDSA signatures verify with the trust store's key of their kid."""
    key = SigningKey.new(kind)
    assert await verdict_of(key.sign(card()), [key]) == Verdict("valid")


async def test_exact_jcs_where_it_differs_from_sorted_json() -> None:
    """A card whose JCS form is not orjson's sorted form (a number JCS writes `1e+21`, keys
    beyond the BMP sorted by UTF-16 code units): signed over the exact JCS, it is valid."""
    import rfc8785

    key = SigningKey.new()
    odd = {**card(), "x-extension": {"\U0001f600": 1, "\uffff": 2, "big": 1e21, "f": 0.5}}
    unsigned = {k: v for k, v in odd.items() if k != "signatures"}
    assert rfc8785.dumps(unsigned) != orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
    assert await verdict_of(key.sign(odd), [key]) == Verdict("valid")


async def test_tampered_after_signing_is_invalid() -> None:
    """One character changed after signing: bad-signature."""
    key = SigningKey.new()
    signed = key.sign(card())
    tampered = {**signed, "description": "Forecasts, senor"}
    found = await verdict_of(tampered, [key])
    assert (found.status, found.reason) == ("invalid", Reason.MISMATCH)


async def test_another_key_with_the_same_kid_is_invalid() -> None:
    """A signature by an impostor who reuses the trusted kid does not verify."""
    trusted, impostor = SigningKey.new(kid="k1"), SigningKey.new(kid="k1")
    found = await verdict_of(impostor.sign(card()), [trusted])
    assert found.reason is Reason.MISMATCH


async def test_unknown_kid_without_jku_has_no_key() -> None:
    """No trusted key with the signature's kid and no jku: no-trusted-key."""
    found = await verdict_of(SigningKey.new(kid="other").sign(card()), [SigningKey.new(kid="k1")])
    assert found.reason is Reason.NO_KEY


async def test_one_good_signature_of_several_suffices() -> None:
    """Signed by an unknown key and by a trusted one: valid (a2a-sdk's rule)."""
    trusted, stranger = SigningKey.new(kid="t"), SigningKey.new(kid="s")
    both = trusted.sign(stranger.sign(card()))
    assert len(both["signatures"]) == 2
    assert (await verdict_of(both, [trusted])).status == "valid"


def test_registration_prepared_with_its_signature() -> None:
    """apply.lua gets `unsigned` for a card without signatures, '' (to check) for a signed
    one; an empty signatures list is unsigned."""

    def prepared(document: dict[str, Any]) -> str:
        body = Register(
            agent_id="weather",
            instance_id="i-1",
            seq=1,
            ttl_s=30,
            card=document,
            sent_at=datetime.now(UTC),
        )
        return prepare("agent.weather.register", command_json(body), None, Limits()).signature

    assert prepared(card()) == "unsigned"
    assert prepared({**card(), "signatures": []}) == "unsigned"
    assert prepared(SigningKey.new().sign(card())) == ""


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none", "kid": "k1"}, Reason.ALGORITHM),
        ({"alg": "HS256", "kid": "k1"}, Reason.ALGORITHM),
        ({"alg": "ES256", "kid": "k1", "crit": ["exp"]}, Reason.ALGORITHM),
        ({"alg": "ES256", "kid": "k1", "b64": False}, Reason.ALGORITHM),
        ({"alg": "ES256", "kid": 7}, Reason.MALFORMED),
    ],
)
async def test_hostile_headers_refused(header: dict[str, Any], reason: Reason) -> None:
    """`alg: none`, HMAC (a public key used as a shared secret), crit, b64, a non-string kid:
    invalid with their reason, whatever the signature says."""
    key = SigningKey.new()
    forged = {**card(), "signatures": [{"protected": encode_header(header), "signature": ""}]}
    found = await verdict_of(forged, [key])
    assert (found.status, found.reason) == ("invalid", reason)


@pytest.mark.parametrize(
    "signatures",
    [
        [{"protected": "!!!", "signature": "x"}],
        [{"protected": encode_header({"alg": "ES256"})}],
        ["a string"],
        [{"protected": "e30" * 5000, "signature": "x"}],
        [{"protected": encode_header({"alg": "ES256"}), "signature": "x"}] * (MAX_SIGNATURES + 1),
        {"protected": "x"},
    ],
)
async def test_malformed_signatures(signatures: Any) -> None:
    """Not JWS, or more signatures than are checked: invalid, malformed (no exception)."""
    found = await verdict_of({**card(), "signatures": signatures}, [SigningKey.new()])
    assert (found.status, found.reason) == ("invalid", Reason.MALFORMED)


async def test_algorithm_confusion_refused() -> None:
    """An RS256 header over an EC key's kid: the EC key is not tried, nothing verifies."""
    ec_key, rsa_key = SigningKey.new("EC", kid="k1"), SigningKey.new("RSA", kid="k1")
    signed = rsa_key.sign(card())
    assert (await verdict_of(signed, [ec_key])).reason is Reason.NO_KEY


async def test_signed_by_a2a_sdk_is_valid_and_tampered_invalid() -> None:
    """a2a-sdk's own signer (it drops empty members before canonicalizing): the card it
    serves verifies; the same card tampered does not."""
    from a2a.types import AgentCard
    from a2a.utils.signing import create_agent_card_signer
    from google.protobuf.json_format import MessageToDict, ParseDict
    from jwt.api_jwk import PyJWK

    key = SigningKey.new()
    message = ParseDict(card(), AgentCard(), ignore_unknown_fields=True)
    signer = create_agent_card_signer(
        PyJWK.from_dict({**key.public_jwk, **_private_numbers(key)}, algorithm="ES256"),
        {"alg": "ES256", "kid": key.kid, "typ": "JOSE", "jku": None},
    )
    served = MessageToDict(signer(message))
    assert served["capabilities"] == {}  # kept by the SDK's serializer, dropped when signing
    assert await verdict_of(served, [key]) == Verdict("valid")
    tampered = {**served, "name": "Not weather"}
    assert (await verdict_of(tampered, [key])).reason is Reason.MISMATCH


def _private_numbers(key: SigningKey) -> dict[str, Any]:
    """The private part of an EC test key as JWK members."""
    from jwt.algorithms import ECAlgorithm

    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.private, as_dict=True)
    return {"d": jwk["d"]}


async def test_jku_served_where_the_guard_allows_is_valid(server: CardServer) -> None:
    """A kid not in the trust store, its JWKS at the agent's own host (127.0.0.1, allowed):
    fetched once, valid; a second check of another card by the same key uses the cache."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    keys = KeySource([], fetcher())
    checker = SignatureChecker(keys)
    first = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    second = key.sign(card(f"{server.url}/b", name="Other"), jku=f"{server.url}{JWKS}")
    for document in (first, second):
        found = await checker.verdict(orjson.dumps(document), hosts_of(document))
        assert found == Verdict("valid")
    assert [r.path for r in server.requests] == [JWKS]
    assert keys.fetches == 1
    await keys.aclose()
    checker.close()


async def test_jku_at_a_forbidden_address_is_not_fetched(server: CardServer) -> None:
    """Loopback not allowed by the guard: the listener is never called, invalid jku-refused."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher(allowed=()))
    assert (found.status, found.reason) == ("invalid", Reason.JKU_REFUSED)
    assert "127.0.0.1 is not a public address" in found.why
    assert server.requests == []


async def test_jku_on_a_host_not_the_agents_is_not_fetched(server: CardServer) -> None:
    """A jku on another host than the agent's endpoints: refused before any request, so no
    one can vouch for a card with a key set of their own."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.json(key_set(key))
    signed = key.sign(card("https://weather.example/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher())
    assert found.reason is Reason.JKU_REFUSED
    assert server.requests == []


async def test_jku_over_plain_http_to_a_public_address_refused() -> None:
    """A jku `http://` URL whose host resolves to a public address: refused before any
    connection (RFC 7515 wants TLS for a key set); https would be fetched."""
    resolved: list[str] = []

    async def public(host: str, port: int) -> list[Any]:
        resolved.append(host)
        return [ipaddress.ip_address("93.184.216.34")]

    key = SigningKey.new(kid="remote")
    signed = key.sign(card("http://agent.example/a2a"), jku="http://agent.example/jwks.json")
    plain = CardFetcher(FetchPolicy(max_redirects=0, timeout_s=5), resolver=public)
    found = await verdict_of(signed, fetcher=plain)
    assert (found.reason, resolved) == (Reason.JKU_REFUSED, ["agent.example"])
    assert "https only" in found.why


async def test_jku_redirect_refused(server: CardServer) -> None:
    """A jku answering with a redirect (even to the same origin): refused, not followed."""
    key = SigningKey.new(kid="remote")
    server.routes[JWKS] = Reply.redirect("/elsewhere.json")
    server.routes["/elsewhere.json"] = Reply.json(key_set(key))
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher())
    assert found.reason is Reason.JKU_REFUSED
    assert "redirect" in found.why
    assert [r.path for r in server.requests] == [JWKS]


@pytest.mark.parametrize("stream", [False, True])
async def test_huge_jwks_refused(server: CardServer, stream: bool) -> None:
    """A key set beyond the cap, announced or streamed: jku-too-large."""
    key = SigningKey.new(kid="remote")
    padding = [{"kty": "oct", "k": "x" * 1000, "kid": f"p{n}"} for n in range(100)]
    server.routes[JWKS] = Reply.json({"keys": [*padding, key.public_jwk]}, stream=stream)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    found = await verdict_of(signed, fetcher=fetcher(max_bytes=4096))
    assert found.reason is Reason.JKU_TOO_LARGE


async def test_slow_jwks_ends_at_the_deadline(server: CardServer) -> None:
    """A JWKS server that stalls mid-body: jku-unreachable at the deadline, while the server
    still holds the rest."""
    key = SigningKey.new(kid="remote")
    release = asyncio.Event()
    server.routes[JWKS] = Reply.json(key_set(key), hold_after=5, release=release)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    try:
        found = await verdict_of(signed, fetcher=fetcher(timeout_s=0.2))
        assert found.reason is Reason.JKU_UNREACHABLE
        assert not release.is_set()
    finally:
        release.set()


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"<html>"), Reason.JKU_BAD),
        (Reply.json({"keys": "no"}), Reason.JKU_BAD),
        (Reply.json({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "remote"}]}), Reason.NO_KEY),
        (Reply(status=500), Reason.JKU_UNREACHABLE),
    ],
)
async def test_bad_jwks_answers(server: CardServer, reply: Reply, reason: Reason) -> None:
    """Not JSON, not a JWKS, only a shared secret with the kid (never used), an error: invalid
    with the reason."""
    server.routes[JWKS] = reply
    signed = SigningKey.new(kid="remote").sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    assert (await verdict_of(signed, fetcher=fetcher())).reason is reason


async def test_one_fetch_for_concurrent_checks_and_cached_failures(server: CardServer) -> None:
    """Ten checks naming one held JWKS URL share one request; a failed fetch is cached too, so
    a flood naming a bad URL costs one request per cache period."""
    key = SigningKey.new(kid="remote")
    release = asyncio.Event()
    server.routes[JWKS] = Reply.json(key_set(key), hold_after=0, release=release)
    keys = KeySource([], fetcher())
    checker = SignatureChecker(keys)
    signed = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}{JWKS}")
    hosts = hosts_of(signed)
    checks = [asyncio.create_task(checker.verdict(orjson.dumps(signed), hosts)) for _ in range(10)]
    await server.received.wait()
    release.set()
    assert {v.status for v in await asyncio.gather(*checks)} == {"valid"}
    assert keys.fetches == 1

    server.routes["/broken.json"] = Reply(status=500)
    broken = key.sign(card(f"{server.url}/a2a"), jku=f"{server.url}/broken.json")
    for _ in range(3):
        found = await checker.verdict(orjson.dumps(broken), hosts)
        assert found.reason is Reason.JKU_UNREACHABLE
    assert [r.path for r in server.requests] == [JWKS, "/broken.json"]
    await keys.aclose()
    checker.close()


async def test_cache_bounded() -> None:
    """At most `cache_size` key sets are kept; the oldest goes first."""

    class Served(CardFetcher):
        async def fetch(self, url: str, *, public_needs_tls: bool = False) -> bytes:
            return orjson.dumps({"keys": []})

    keys = KeySource([], Served(FetchPolicy()), cache_size=2)
    for n in range(5):
        await keys.jwks(f"https://a.example/{n}")
    assert list(keys._cache) == ["https://a.example/3", "https://a.example/4"]


def test_trust_store_setting(tmp_path: Path) -> None:
    """Inline JSON or a file; secret (oct) keys are never trusted; a bad value says why."""
    key = SigningKey.new()
    inline = orjson.dumps(key_set(key)).decode()
    path = tmp_path / "jwks.json"
    path.write_text(inline)
    assert [k.key_id for k in load_jwks(inline)] == ["k1"]
    assert [k.key_id for k in load_jwks(str(path))] == ["k1"]
    assert load_jwks("") == []
    assert load_jwks('{"keys": []}') == []
    secret_only = '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'
    for bad, says in [
        ("{nope", "not JSON"),
        ('{"k": 1}', "not a JWKS"),
        ("/no/such", "cannot"),
        (secret_only, "no usable public key"),
    ]:
        with pytest.raises(ValueError, match=says):
            load_jwks(bad)
    for bad, says in [("{nope", "not JSON"), ('{"k": 1}', "not a JWKS"), ("/no/such", "cannot")]:
        with pytest.raises(ValidationError, match=says):  # stops the worker at its settings
            Settings(signature_jwks=bad)
    assert Settings(signature_jwks=str(path)).signature_jwks == str(path)


def test_signature_filter_in_memory() -> None:
    """The read model indexes the recorded signature as Redis does: `?signature=valid`
    matches only that agent, an unchecked signed card matches no signature filter."""

    def entry(signature: str | None) -> Any:
        event = OutboxEvent(
            revision=1,
            kind="joined",
            agent_id="a",
            status="live",
            live_instances=1,
            reason="registered",
            time_ms=0,
            epoch="e",
            card=None,
            view=agent_view(card(), None, None).model_dump_json().encode(),
            signature=signature,
        )
        assert orjson.loads(event.body()).get("signature") == signature
        return entry_from_record(record_from_event(event))

    for value in ("valid", "invalid", "unsigned"):
        made = entry(value)
        assert Filters(signature=value).matches(made.terms, made.text)
        others = {"valid", "invalid", "unsigned"} - {value}
        assert not any(Filters(signature=o).matches(made.terms, made.text) for o in others)
    pending = entry(None)
    assert not any(
        Filters(signature=s).matches(pending.terms, pending.text)
        for s in ("valid", "invalid", "unsigned")
    )


class GatedStore:
    """What the verifier asks of the store: the card of a state (after `gate` opens), and the
    recorded results."""

    def __init__(self, cards: dict[str, bytes], gate: asyncio.Event) -> None:
        self.cards = cards
        self.gate = gate
        self.recorded: list[tuple[str, str]] = []

    async def card_to_check(self, agent_id: str, state_digest: str) -> bytes | None:
        await self.gate.wait()
        return self.cards[agent_id]

    async def record_signature(self, agent_id: str, state_digest: str, signature: str) -> Any:
        self.recorded.append((agent_id, signature))
        return VerifyResult(recorded=True, changed=True)


async def test_queue_bounded_and_unsigned_never_queued() -> None:
    """A flood of signed registrations holds at most the queue's bound (the rest dropped and
    counted), the same registration is queued once, an unsigned one not at all."""
    key = SigningKey.new()
    documents = {f"a{n}": key.sign(card(name=f"A{n}")) for n in range(1, 4)}
    gate = asyncio.Event()
    store = GatedStore({a: orjson.dumps(d) for a, d in documents.items()}, gate)
    checker = SignatureChecker(KeySource(load_jwks(orjson.dumps(key_set(key)).decode()), None))
    metrics = WorkerMetrics()
    made = SignatureVerifier(store, checker, metrics, queue_size=1, concurrency=1)  # type: ignore[arg-type]

    def registration(agent_id: str, document: dict[str, Any]) -> Any:
        body = Register(
            agent_id=agent_id,
            instance_id="i-1",
            seq=1,
            ttl_s=30,
            card=document,
            sent_at=datetime.now(UTC),
        )
        return prepare(f"agent.{agent_id}.register", command_json(body), None, Limits())

    made.start()
    try:
        made.offer(registration("plain", card()))  # unsigned: recorded by apply.lua
        first = registration("a1", documents["a1"])
        made.offer(first)
        await asyncio.sleep(0)  # the one task takes it: the queue is empty again
        made.offer(first)  # pending: not queued twice
        made.offer(registration("a2", documents["a2"]))  # fills the queue
        made.offer(registration("a3", documents["a3"]))  # dropped
        dropped = metrics.registry.get_sample_value(
            "agentroster_signature_checks_total", {"result": "dropped"}
        )
        assert dropped == 1
        gate.set()
        await made.idle()
    finally:
        await made.stop()
    assert store.recorded == [("a1", "valid"), ("a2", "valid")]
