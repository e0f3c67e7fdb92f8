"""Signing A2A cards in tests: keys generated per test, signatures made as the A2A
specification and a2a-sdk make them (JWS, detached payload: the JCS form of the card without
`signatures`), and key sets to trust or serve.

    key = SigningKey.new("EC", kid="k1")
    signed = key.sign(card, jku="http://127.0.0.1:8080/jwks.json")
    jwks = key_set(key)                    # {"keys": [public JWK]}
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

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
