"""Signed A2A cards: what a signature covers, and whether it holds (no I/O).

An A2A card (v0.3 and v1.0) may carry `signatures[]`, each the parts of a JWS (RFC 7515):
`protected` (the base64url JSON header: `alg`, `kid`, optionally `jku` and `typ`), `signature`,
and optionally an unprotected `header`. The payload is detached: it is the card without its
`signatures` member in the JCS canonical form (RFC 8785), so the signing input is
`protected || '.' || BASE64URL(JCS(card - signatures))` (A2A specification, "Agent Card
signing"; a2a-sdk's `a2a.utils.signing` builds the same input).

a2a-sdk (1.x) signs a card it holds as a protobuf message: its payload is the JCS form of the
card with empty strings, lists and objects (and nulls) removed, since protobuf cannot tell them
from absent. A card the SDK serves may still carry such empty members (`"capabilities": {}`),
so a signature that does not verify over the card as registered is tried over that form too:
an empty member added to a signed card does not make it invalid, nothing else does.

A card is `valid` when at least one of its signatures verifies with a key the registry trusts
for it (a2a-sdk's verifier has the same rule), `invalid` when none does, and `unsigned` when it
has no `signatures`. Only asymmetric algorithms count: `none` and the HMAC family never (a
public card signed with a shared secret proves nothing to a registry), nor a header that names
critical extensions (`crit`) or an unencoded payload (`b64`), which this verifier does not
implement (RFC 7515 4.1.11: such a signature must be refused).
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jwt
import orjson
import rfc8785
from jwt.api_jwk import PyJWK

SignatureStatus = Literal["valid", "invalid", "unsigned"]

#: The algorithms a card signature may use (asymmetric only; see the module docstring).
ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Signatures looked at per card at most: each may cost a key fetch and a verification.
MAX_SIGNATURES = 8
#: A protected header longer than this is not a header but an attempt to make us decode.
MAX_PROTECTED_CHARS = 4096
#: Nesting a card may have to be canonicalized (a2a-sdk's bound): deeper is malformed, and
#: never a recursion error.
MAX_DEPTH = 128


class Reason(enum.StrEnum):
    """Why a card is `invalid` (also the metric's label, so a bounded set)."""

    MALFORMED = "malformed"  # signatures[] or a protected header that is not what JWS says
    ALGORITHM = "algorithm-refused"  # none, HMAC, unknown, or crit/b64
    NO_KEY = "no-trusted-key"  # neither the trust store nor the signer's JWKS has its kid
    JKU_REFUSED = "jku-refused"  # the guard (or the same-host rule) refused the JWKS URL
    JKU_UNREACHABLE = "jku-unreachable"  # no JWKS there in time (timeout, error, redirect)
    JKU_TOO_LARGE = "jku-too-large"  # the JWKS was larger than allowed
    JKU_BAD = "jku-bad-jwks"  # what the JWKS URL served is not a JWKS
    MISMATCH = "bad-signature"  # a key was found and the signature does not verify with it


class SignatureError(Exception):
    """A signature cannot be checked or does not hold; `reason` says which way."""

    def __init__(self, reason: Reason, why: str) -> None:
        super().__init__(why)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Signature:
    """One entry of a card's `signatures`, its protected header decoded."""

    protected: str
    signature: str
    alg: str
    kid: str | None
    jku: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking a card: its status, and for `invalid` why (for logs)."""

    status: SignatureStatus
    reason: Reason | None = None
    why: str = ""


def is_signed(card: Mapping[str, Any]) -> bool:
    """Whether the card carries signatures (a non-empty `signatures` list)."""
    signatures = card.get("signatures")
    return isinstance(signatures, list) and bool(signatures)


def signatures_of(card: Mapping[str, Any]) -> list[Signature]:
    """The card's signatures, headers decoded; `SignatureError` for the first one that is not
    a JWS this verifier accepts (malformed, or an algorithm it refuses)."""
    entries = card.get("signatures")
    if not isinstance(entries, list) or not entries:
        raise SignatureError(Reason.MALFORMED, "signatures is not a non-empty list")
    if len(entries) > MAX_SIGNATURES:
        raise SignatureError(
            Reason.MALFORMED, f"{len(entries)} signatures, at most {MAX_SIGNATURES} are checked"
        )
    return [_signature(entry) for entry in entries]


def _signature(entry: Any) -> Signature:
    if not isinstance(entry, dict):
        raise SignatureError(Reason.MALFORMED, "a signature is not an object")
    protected, signature = entry.get("protected"), entry.get("signature")
    if not isinstance(protected, str) or not isinstance(signature, str):
        raise SignatureError(Reason.MALFORMED, "a signature lacks protected or signature")
    if len(protected) > MAX_PROTECTED_CHARS:
        raise SignatureError(Reason.MALFORMED, "the protected header is too long")
    try:
        header = orjson.loads(_b64decode(protected))
    except (ValueError, binascii.Error):
        raise SignatureError(
            Reason.MALFORMED, "the protected header is not base64url JSON"
        ) from None
    if not isinstance(header, dict):
        raise SignatureError(Reason.MALFORMED, "the protected header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise SignatureError(Reason.ALGORITHM, f"algorithm {str(alg)[:20]!r} is not accepted")
    if "crit" in header or "b64" in header:
        raise SignatureError(Reason.ALGORITHM, "crit and b64 headers are not supported")
    kid, jku = header.get("kid"), header.get("jku")
    if (kid is not None and not isinstance(kid, str)) or (
        jku is not None and not isinstance(jku, str)
    ):
        raise SignatureError(Reason.MALFORMED, "kid and jku must be strings")
    return Signature(protected=protected, signature=signature, alg=alg, kid=kid, jku=jku)


def payloads_b64(card: Mapping[str, Any]) -> Iterator[bytes]:
    """BASE64URL of what a signature of the card may cover, made as needed: the JCS form of
    the card without `signatures` (written by orjson first, see below), then, if different,
    a2a-sdk's form of it (empty members removed; see the module docstring); `SignatureError`
    when the card has no JCS form."""
    unsigned = {key: value for key, value in card.items() if key != "signatures"}
    try:
        # orjson with sorted keys writes the JCS form of most cards (no fractions, no keys
        # beyond the BMP) 60 times faster than rfc8785; a signature that verifies over it
        # covers exactly this card all the same, and when it does not, the exact form follows
        fast = _b64(orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS))
    except orjson.JSONEncodeError:
        fast = b""
    if fast:
        yield fast
    exact = _jcs_b64(unsigned)
    if exact != fast:
        yield exact
    cleaned = _without_empty(unsigned, 1) or {}
    if cleaned != unsigned:
        yield _jcs_b64(cleaned)


def _jcs_b64(value: Mapping[str, Any]) -> bytes:
    try:
        canonical = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, RecursionError) as exc:  # e.g. a huge integer
        raise SignatureError(Reason.MALFORMED, f"the card has no JCS form: {exc}") from None
    return _b64(canonical)


def _b64(data: bytes) -> bytes:
    """Base64url without padding, as JWS writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _without_empty(value: Any, depth: int) -> Any:
    """The value without empty strings, lists, objects and nulls, recursively (None if it
    is itself empty), as a2a-sdk cleans a card before canonicalizing it."""
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        raise SignatureError(Reason.MALFORMED, f"the card nests deeper than {MAX_DEPTH}")
    if isinstance(value, dict):
        kept = {k: c for k, v in value.items() if (c := _without_empty(v, depth + 1)) is not None}
        return kept or None
    if isinstance(value, list):
        items = [c for v in value if (c := _without_empty(v, depth + 1)) is not None]
        return items or None
    return None if value == "" else value


def verify_any(
    card: Mapping[str, Any], candidates: Sequence[tuple[Signature, Sequence[PyJWK]]]
) -> bool:
    """Whether one of the signatures verifies, with one of its candidate keys, over one of the
    card's payload forms (the second form is only made when the first verifies nothing).
    CPU only, no I/O: the worker runs it off its event loop. `SignatureError` when the card
    has no JCS form."""
    for payload in payloads_b64(card):
        for signature, keys in candidates:
            token = f"{signature.protected}.{payload.decode()}.{signature.signature}"
            for key in keys:
                try:
                    # the key object, not the PyJWK: PyJWT would use the JWK's own (or guessed)
                    # alg, and the header's alg was already checked against ALGORITHMS
                    jwt.api_jws.PyJWS().decode_complete(
                        token, key=key.key, algorithms=[signature.alg]
                    )
                except jwt.PyJWTError:
                    continue
                return True
    return False


def parse_jwks(document: Any) -> list[PyJWK]:
    """The usable public keys of a JWKS document (`{"keys": [...]}`); keys of a type PyJWT
    cannot use, or private keys' secret parts, are skipped; `SignatureError` if it is not a
    JWKS at all."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SignatureError(Reason.JKU_BAD, "not a JWKS (an object with a keys list)")
    keys: list[PyJWK] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct":  # never a shared secret
            continue
        try:
            keys.append(PyJWK(entry))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
    return keys


def keys_for(signature: Signature, keys: Sequence[PyJWK]) -> list[PyJWK]:
    """The keys a signature may be checked with: those with its `kid` (every key when it names
    none), of a type its algorithm uses."""
    chosen = [key for key in keys if signature.kid is None or key.key_id == signature.kid]
    return [key for key in chosen if _fits(key, signature.alg)]


def _fits(key: PyJWK, alg: str) -> bool:
    """Whether the key's type is the one the algorithm uses (no algorithm confusion)."""
    kty = "OKP" if alg == "EdDSA" else "EC" if alg.startswith("ES") else "RSA"
    return bool(key.key_type == kty)


def _b64decode(text: str) -> bytes:
    """Base64url without padding, as JWS writes it."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
