"""Signing A2A cards in tests: keys generated per test, signatures made as the A2A
specification and a2a-sdk make them (JWS, detached payload: the JCS form of the card without
`signatures`), key sets to trust or serve, and the worker's verdict on a card.

    key = SigningKey.new("EC", kid="k1")
    signed = key.sign(card(), jku="http://127.0.0.1:8080/jwks.json")
    jwks = key_set(key)                    # {"keys": [public JWK]}
    await verdict_of(signed, [key])        # Verdict("valid")
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from agentroster.contracts import Register
from agentroster.contracts.commands import command_json
from agentroster.registry.card_signature import Verdict
from agentroster.registry.prepare import Limits, prepare
from agentroster.worker.card_fetch import CardFetcher
from agentroster.worker.signature_check import SignatureChecker, check_for
from agentroster.worker.signature_keys import KeySource, load_jwks

_ALG = {"EC": "ES256", "RSA": "RS256", "OKP": "EdDSA"}


@dataclass(frozen=True)
class SigningKey:
    """A private key and its public JWK (with `kid`)."""

    private: Any
    public_jwk: dict[str, Any]
    alg: str

    @classmethod
    def new(cls, kind: str = "EC", *, kid: str = "k1") -> SigningKey:
        """A fresh key: EC P-256 (ES256), RSA 2048 (RS256) or Ed25519 (EdDSA)."""
        private: Any
        if kind == "EC":
            private = ec.generate_private_key(ec.SECP256R1())
            public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        elif kind == "RSA":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = ed25519.Ed25519PrivateKey.generate()
            public = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        return cls(private, {**public, "kid": kid, "use": "sig"}, _ALG[kind])

    @property
    def kid(self) -> str:
        """The key id."""
        return str(self.public_jwk["kid"])

    def sign(
        self, card: dict[str, Any], *, jku: str | None = None, header: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The card with one more signature by this key (protected header: alg, kid, typ
        JOSE, and jku if given; `header` adds or overrides entries)."""
        protected: dict[str, Any] = {"alg": self.alg, "kid": self.kid, "typ": "JOSE"}
        if jku is not None:
            protected["jku"] = jku
        protected.update(header or {})
        payload = rfc8785.dumps({k: v for k, v in card.items() if k != "signatures"})
        token = jwt.api_jws.PyJWS().encode(
            payload, self.private, algorithm=self.alg, headers=protected
        )
        encoded_header, _, signature = token.split(".")
        entry = {"protected": encoded_header, "signature": signature}
        return {**card, "signatures": [*card.get("signatures", []), entry]}


def key_set(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS of the keys' public halves."""
    return {"keys": [key.public_jwk for key in keys]}


def encode_header(header: dict[str, Any]) -> str:
    """A protected header encoded as JWS does, for hand-made hostile signatures."""
    return base64.urlsafe_b64encode(orjson.dumps(header)).rstrip(b"=").decode()


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
