"""What verifying a signed card costs a worker, in-process (no broker, no Redis, no network).

`.venv/bin/python -m bench.signatures` times `SignatureChecker.verdict` (parse, JCS, key
lookup in the trust store, JWS verification) per algorithm, for a small card and one near the
64 KiB card limit, signed and tampered (a tampered card with an empty member is tried over
both payload forms: the worst case). The key sets of `jku` fetches are cached, so their cost is
one fetch per URL per cache period, not per card. Figures in bench/README.md, Signed cards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import jwt
import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from agentroster.worker.signature_check import SignatureChecker
from agentroster.worker.signature_keys import KeySource, load_jwks
from bench.harness.measure import percentile
from bench.harness.tables import Column, Table

TABLE = Table(
    Column("alg", 6, align="<"),
    Column("card", 9, align="<"),
    Column("outcome", 8, align="<"),
    Column("bytes", 7, ","),
    Column("p50 us", 8, ",.0f"),
    Column("p99 us", 8, ",.0f"),
    Column("per s", 8, ",.0f"),
)


def new_key(alg: str) -> tuple[Any, dict[str, Any]]:
    """A private key and its public JWK (kid `k`)."""
    private: Any
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        public = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return private, {**public, "kid": "k"}


def card(skills: int) -> dict[str, Any]:
    """An A2A v1.0 card with `skills` skills (and an empty member, as a2a-sdk serves one)."""
    return {
        "name": "Bench agent",
        "version": "1.0.0",
        "supportedInterfaces": [{"url": "https://bench.example/a2a", "protocolBinding": "JSONRPC"}],
        "capabilities": {},
        "skills": [
            {"id": f"s{n}", "name": f"Skill {n}", "description": "d" * 120, "tags": ["t"]}
            for n in range(skills)
        ],
    }


def signed(document: dict[str, Any], private: Any, alg: str) -> dict[str, Any]:
    """The card with one signature (JWS over its JCS form, detached)."""
    token = jwt.api_jws.PyJWS().encode(
        rfc8785.dumps(document), private, algorithm=alg, headers={"kid": "k"}
    )
    protected, _, signature = token.split(".")
    return {**document, "signatures": [{"protected": protected, "signature": signature}]}


async def timed(checker: SignatureChecker, body: bytes, runs: int, expect: str) -> list[float]:
    """Seconds per verdict, `runs` times."""
    hosts = frozenset({"bench.example"})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        verdict = await checker.verdict(body, hosts)
        times.append(time.perf_counter() - start)
        assert verdict.status == expect, verdict
    return times


async def run(runs: int) -> None:
    """Print the table."""
    print(TABLE.header())
    print(TABLE.rule())
    for alg in ("ES256", "RS256", "EdDSA"):
        private, public = new_key(alg)
        checker = SignatureChecker(
            KeySource(load_jwks(orjson.dumps({"keys": [public]}).decode()), None)
        )
        for size, skills in (("small", 3), ("near-64k", 380)):
            document = signed(card(skills), private, alg)
            tampered = {**document, "name": "Tampered"}
            for outcome, value, expect in (
                ("valid", document, "valid"),
                ("tampered", tampered, "invalid"),
            ):
                body = orjson.dumps(value)
                times = await timed(checker, body, runs, expect)
                p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
                print(TABLE.row(alg, size, outcome, len(body), p50 * 1e6, p99 * 1e6, 1 / p50))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="verdicts per row")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    asyncio.run(run(parse_args(argv).runs))


if __name__ == "__main__":
    main()
