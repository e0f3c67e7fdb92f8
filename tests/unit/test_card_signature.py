"""Signed A2A cards without Redis, a broker or a network: the verdict of a card signed with a
key made in the test and trusted, tampered, unsigned, and hostile signatures; the signature a
registration is prepared with; the `signature` filter in memory; a card signed by a2a-sdk's own
signer. Key sets fetched from a `jku`: test_signature_keys.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from agentroster.api.read_model.index import entry_from_record, record_from_event
from agentroster.contracts import Register, agent_view
from agentroster.contracts.commands import command_json
from agentroster.registry.card_signature import MAX_SIGNATURES, Reason, Verdict
from agentroster.registry.prepare import Limits, prepare
from agentroster.registry.terms import Filters
from agentroster.store.outbox import OutboxEvent
from tests.signing import SigningKey, card, encode_header, verdict_of


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
