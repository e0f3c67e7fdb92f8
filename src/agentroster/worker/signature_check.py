"""Signature verification of signed A2A cards in the background, as card checks are done.

apply.lua records `signature: unsigned` itself for a card without `signatures` (nothing to
check, no extra event). A registration of a signed card is offered here once its batch
committed (`offer`, no I/O); a few tasks take checks from a bounded queue, skip a state that is
no longer the agent's or was already checked (`RedisStore.card_to_check`, which reads the card
then: the queue holds no cards), find the keys of every signature at once
(`signature_keys.KeySource`: trust store, or the signer's JWKS URL behind the SSRF guard),
verify (`registry.card_signature`) and record `valid` or `invalid` with signature.lua, which
bumps the revision and writes `agent.updated` (reason `signature`) when the value changed.

What this costs the write path: an append to a queue. What it may lose: a full queue drops the
check (counted, `result="dropped"`), a stopping worker the checks not done yet; the agent then
shows `signature: null` (not checked) until its card changes.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from jwt.api_jwk import PyJWK

from agentroster.registry.card_signature import (
    Reason,
    Signature,
    SignatureError,
    Verdict,
    signatures_of,
    verify_any,
)
from agentroster.registry.prepare import Prepared
from agentroster.store.redis_store import RedisStore
from agentroster.worker.background_checks import BackgroundChecks
from agentroster.worker.loops import report_flapping
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.signature_keys import KeySource

log = logging.getLogger(__name__)

KeysOrError = list[PyJWK] | SignatureError

#: Agents waiting for a check at most (one place each); past it a check is dropped (bounded
#: memory under a flood).
QUEUE_SIZE = 1000
#: Checks in flight at once per worker (a slow JWKS URL holds one of them, never a batch).
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signed registration to check: the state it is for and its endpoint hosts."""

    agent_id: str
    state_digest: str
    hosts: frozenset[str]


def check_for(command: Prepared) -> SignatureCheck:
    """What to check for an applied registration of a signed card."""
    try:
        view = orjson.loads(command.view)
    except orjson.JSONDecodeError:
        view = {}
    endpoints = view.get("endpoints") if isinstance(view, dict) else None
    urls = [e.get("url") for e in endpoints or [] if isinstance(e, dict)]
    hosts = set()
    for url in urls:
        if isinstance(url, str):
            try:
                host = urlsplit(url).hostname
            except ValueError:
                continue
            if host:
                hosts.add(host.lower())
    return SignatureCheck(command.agent_id, command.state_digest, frozenset(hosts))


class SignatureChecker:
    """Decides one card's verdict with a `KeySource` (no queue, no store: the unit of
    verification that the verifier runs and tests call directly).

    Canonicalizing and verifying are CPU work (milliseconds for a card near the size limit,
    more for a tampered one: bench/signatures.py), so they run in one thread of the checker's
    own, not on the event loop that applies commands; one thread, so checks share one."""

    def __init__(self, keys: KeySource) -> None:
        self.keys = keys
        self._cpu = ThreadPoolExecutor(1, thread_name_prefix="agentroster-signatures")

    async def verdict(self, card: bytes, hosts: frozenset[str]) -> Verdict:
        """`valid` if one signature verifies, else `invalid` with the reason of the first
        signature in the card's order."""
        try:
            document = orjson.loads(card)
            if not isinstance(document, dict):
                return Verdict("unsigned")
            signatures = signatures_of(document)
        except SignatureError as exc:
            return Verdict("invalid", exc.reason, str(exc))
        except orjson.JSONDecodeError:  # stored cards are JSON: defensive only
            return Verdict("unsigned")
        # at once: a card of 8 signatures naming 8 slow key sets waits one deadline, not 8
        outcomes = await asyncio.gather(*(self._keys(s, hosts) for s in signatures))
        candidates = [
            (signature, keys)
            for signature, keys in zip(signatures, outcomes, strict=True)
            if not isinstance(keys, SignatureError)
        ]
        if candidates:
            loop = asyncio.get_running_loop()
            try:
                if await loop.run_in_executor(self._cpu, verify_any, document, candidates):
                    return Verdict("valid")
            except SignatureError as exc:
                return Verdict("invalid", exc.reason, str(exc))
        first = next(
            outcome
            if isinstance(outcome, SignatureError)
            else SignatureError(Reason.MISMATCH, f"no key with kid {signature.kid!r} verifies it")
            for signature, outcome in zip(signatures, outcomes, strict=True)
        )
        return Verdict("invalid", first.reason, str(first))

    async def _keys(self, signature: Signature, hosts: frozenset[str]) -> KeysOrError:
        try:
            return await self.keys.for_signature(signature, hosts)
        except SignatureError as exc:
            return exc

    def close(self) -> None:
        """Stop the verification thread (after the check under way, if any)."""
        self._cpu.shutdown(wait=False, cancel_futures=True)


class SignatureVerifier:
    """The bounded background signature verifier of one worker (see the module docstring)."""

    def __init__(
        self,
        store: RedisStore,
        checker: SignatureChecker,
        metrics: WorkerMetrics,
        *,
        queue_size: int = QUEUE_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._store = store
        self.checker = checker
        self._metrics = metrics
        self._checks = BackgroundChecks(
            "signature check",
            self._check,
            metrics.signature_checks.labels("dropped").inc,
            queue_size=queue_size,
            concurrency=concurrency,
        )

    def offer(self, command: Prepared) -> None:
        """Queue the check of an applied registration of a signed card; never waits. An agent
        holds one place in the queue at most (`BackgroundChecks`): its newest state is the
        one checked, so one agent re-registering new cards in a loop cannot crowd the others
        out."""
        if command.kind != "register" or command.signature != "":
            return  # unsigned: apply.lua recorded it
        key = (command.agent_id, command.state_digest)
        self._checks.offer(command.agent_id, key, check_for(command))

    def start(self) -> None:
        """Start the checking tasks."""
        self._checks.start()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop checking (pending checks are lost), cancel key set fetches, close the fetcher."""
        await self._checks.stop(timeout_s)
        await self.checker.keys.aclose()
        self.checker.close()

    async def idle(self) -> None:
        """Return once no check is queued or in flight (for tests and shutdown)."""
        await self._checks.idle()

    async def _check(self, check: SignatureCheck) -> None:
        card = await self._store.card_to_check(check.agent_id, check.state_digest)
        if card is None:
            return
        verdict = await self.checker.verdict(card, check.hosts)
        label = verdict.status if verdict.reason is None else verdict.reason.value
        self._metrics.signature_checks.labels(label).inc()
        recorded = await self._store.record_signature(
            check.agent_id, check.state_digest, verdict.status
        )
        report_flapping(self._metrics, list(recorded.damped))
        if verdict.reason is None:
            log.info("signature of %s: %s", check.agent_id, verdict.status)
        else:
            why = verdict.why
            log.info("signature of %s: invalid, %s (%s)", check.agent_id, verdict.reason, why)
