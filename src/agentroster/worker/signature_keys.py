"""The keys a signed card may be checked with: the trust store, and signers' JWKS URLs.

    keys = KeySource(load_jwks(settings.signature_jwks), fetcher)  # fetcher None: no jku
    candidates = await keys.for_signature(signature, agent_hosts)

The trust store is the operator's JWKS (`AGENTROSTER_SIGNATURE_JWKS`: a file or inline JSON),
read once at start. A signature whose `kid` is not in it may name where its key set lives
(`jku`); that URL is fetched through the SSRF guard (`CardFetcher.fetch`: checked addresses
only, one deadline, a size cap, no redirect, https to public addresses: RFC 7515 4.1.2), and
only when its host is one of the agent's own endpoint hosts: a `jku` anywhere else would let
anyone vouch for any card with a key of their own. Fetched key sets are cached per URL for
`cache_s`, at most `cache_size` of them (the oldest goes first), failures too, so a
registration flood naming one slow or hostile URL costs one fetch, and concurrent checks
naming one URL share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from jwt.api_jwk import PyJWK

from agentroster.registry.card_signature import (
    Reason,
    Signature,
    SignatureError,
    keys_for,
    parse_jwks,
)
from agentroster.worker.card_fetch import CardFetcher, FetchFailed, Result

#: Key sets kept per worker at most.
CACHE_SIZE = 256

_FETCH_REASONS = {
    Result.REFUSED: Reason.JKU_REFUSED,
    Result.TOO_LARGE: Reason.JKU_TOO_LARGE,
}


def load_jwks(setting: str) -> list[PyJWK]:
    """The trust store from its setting: '' for none, inline JSON (starting with `{`), or the
    path of a JWKS file; ValueError naming what is wrong (also when none of its keys is a
    public key PyJWT can use: a store that could never verify anything is a mistake)."""
    text = setting.strip()
    if not text:
        return []
    if not text.startswith("{"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the JWKS file {setting!r}: {exc}") from None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the trust store is not JSON: {exc}") from None
    try:
        keys = parse_jwks(document)
    except SignatureError as exc:
        raise ValueError(f"the trust store is not a JWKS: {exc}") from None
    if document["keys"] and not keys:  # a store of only secrets or unknown key types
        raise ValueError("the trust store has no usable public key (RSA, EC or OKP)")
    return keys


class KeySource:
    """Finds the candidate keys of one signature (see the module docstring)."""

    def __init__(
        self,
        trusted: Iterable[PyJWK],
        fetcher: CardFetcher | None,
        *,
        cache_s: float = 300.0,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.trusted = list(trusted)
        #: None: signers' JWKS URLs are never fetched (trust store only)
        self.fetcher = fetcher
        self.cache_s = cache_s
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, list[PyJWK] | SignatureError]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[list[PyJWK]]] = {}
        #: URLs actually fetched (tests and the metric read it)
        self.fetches = 0

    async def for_signature(self, signature: Signature, hosts: frozenset[str]) -> list[PyJWK]:
        """The keys to check `signature` with: the trust store's with its kid, else those of
        its `jku` (when fetching is on and the URL's host is one of `hosts`, the agent's
        endpoint hosts); `SignatureError` when there are none."""
        found = keys_for(signature, self.trusted)
        if found:
            return found
        if signature.jku is None or self.fetcher is None:
            raise SignatureError(Reason.NO_KEY, f"no trusted key with kid {signature.kid!r}")
        host = (urlsplit(signature.jku).hostname or "").lower()
        if host not in hosts:
            raise SignatureError(
                Reason.JKU_REFUSED,
                f"jku host {host[:100]!r} is not a host of the agent's endpoints",
            )
        found = keys_for(signature, await self.jwks(signature.jku))
        if not found:
            raise SignatureError(Reason.NO_KEY, f"the jku key set has no kid {signature.kid!r}")
        return found

    async def aclose(self) -> None:
        """Cancel the fetches under way and close the fetcher's connections."""
        running = list(self._inflight.values())
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self.fetcher is not None:
            await self.fetcher.aclose()

    async def jwks(self, url: str) -> list[PyJWK]:
        """The key set at `url`, from the cache or fetched once; `SignatureError` why not."""
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            self._cache.move_to_end(url)
            if isinstance(cached[1], SignatureError):
                raise SignatureError(cached[1].reason, str(cached[1]))
            return cached[1]
        running = self._inflight.get(url)
        if running is None:
            running = asyncio.ensure_future(self._fetch(url))
            self._inflight[url] = running
            running.add_done_callback(lambda done: self._settled(url, done))
        return await asyncio.shield(running)

    def _settled(self, url: str, done: asyncio.Future[list[PyJWK]]) -> None:
        """A fetch ended: no longer shared; its outcome is read here too, so a fetch whose
        waiters were all cancelled does not log an exception never retrieved."""
        self._inflight.pop(url, None)
        if not done.cancelled():
            done.exception()

    async def _fetch(self, url: str) -> list[PyJWK]:
        assert self.fetcher is not None  # for_signature checked it
        self.fetches += 1
        outcome: list[PyJWK] | SignatureError
        try:
            body = await self.fetcher.fetch(url, public_needs_tls=True)
            outcome = parse_jwks(orjson.loads(body))
        except FetchFailed as exc:
            reason = _FETCH_REASONS.get(exc.result, Reason.JKU_UNREACHABLE)
            outcome = SignatureError(reason, f"jku {url[:200]!r}: {exc}")
        except orjson.JSONDecodeError:
            outcome = SignatureError(Reason.JKU_BAD, f"jku {url[:200]!r} did not answer JSON")
        except SignatureError as exc:
            outcome = exc
        self._cache[url] = (time.monotonic() + self.cache_s, outcome)
        self._cache.move_to_end(url)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        if isinstance(outcome, SignatureError):
            raise outcome
        return outcome
