"""Configuration of the registry, from `AGENTROSTER_*` environment variables.

Built where it is used (`Settings()` in the CLI, or passed in by tests); nothing reads the
environment at import time.

Every value is checked when the settings are built, so a bad one stops a command at once (exit
status 2, naming the variable and what it accepts) instead of failing later, half-started:
numbers have bounds and must be finite (no `inf`, no `nan`), URLs, the log level and the event
log's age are parsed, and settings that only make sense together are checked together.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from pathlib import Path
from typing import Literal, Self
from urllib.parse import SplitResult as _SplitResult
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentroster.contracts import DEFAULT_MAX_CARD_BYTES
from agentroster.contracts.commands import MAX_ENDPOINTS
from agentroster.contracts.ids import AGENT_ID_PATTERN, broker_user
from agentroster.contracts.topology import (
    DEFAULT_BROKER_URL,
    DEFAULT_DELIVERY_LIMIT,
    DEFAULT_EVENT_LOG_MAX_AGE,
    DEFAULT_PREFIX,
)
from agentroster.registry.prepare import DEFAULT_IDLE_TTL_MAX_S, Limits, TtlBounds
from agentroster.registry.terms import TEXT_BUDGET

_LIMITS = Limits()  # the defaults of the registration limits below

DAY_S = 24 * 3600.0
#: AMQP 0-9-1's basic.qos prefetch-count is a 16-bit field.
MAX_PREFETCH = 65535
#: RabbitMQ's `x-max-age`: a positive integer and a unit (Years, Months, Days, hours, minutes,
#: seconds), e.g. `7D`, `12h`.
MAX_AGE_PATTERN = re.compile(r"[1-9][0-9]{0,8}[YMDhms]")


class Settings(BaseSettings):
    """Every knob of the worker and the API; the env var is `AGENTROSTER_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTROSTER_", extra="ignore", allow_inf_nan=False
    )

    broker_url: str = Field(default=DEFAULT_BROKER_URL, description="RabbitMQ URL.")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL.")
    prefix: str = Field(
        default=DEFAULT_PREFIX,
        pattern=AGENT_ID_PATTERN,
        description="Prefix of every exchange, queue and Redis key of this registry.",
    )
    # a floor well above 1 ms: lease TTLs are kept in whole milliseconds, and 0 ms breaks them
    ttl_min_s: float = Field(
        default=5.0, ge=0.1, le=365 * DAY_S, description="Smallest lease TTL accepted."
    )
    ttl_max_s: float = Field(
        default=DAY_S, ge=0.1, le=365 * DAY_S, description="Largest lease TTL accepted."
    )
    # a floor: a sweep is a Redis script call; a few thousand a second would be a busy loop
    sweep_interval_s: float = Field(
        default=1.0, ge=0.05, le=60, description="How often the reaper looks for expired leases."
    )
    reaper_gap_s: float = Field(
        default=5.0,
        gt=0,
        le=DAY_S,
        description="No sweep for this long: every lease gets a full TTL before it may expire "
        "(at least twice the sweep interval).",
    )
    reaper_backlog_limit: int = Field(
        default=10_000,
        ge=0,
        le=1_000_000_000,
        description="The reaper pauses while more commands than this wait in the queue.",
    )
    brake_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Mass-expiry brake: hold expiries that would end more than this share of "
        "live agents at once (0 turns it off).",
    )
    brake_min_agents: int = Field(
        default=20,
        ge=1,
        le=1_000_000_000,
        description="The brake applies from this many live agents.",
    )
    flap_window_s: float = Field(
        default=60.0,
        ge=0.1,
        le=DAY_S,
        description="Flap damping: the window events are counted in.",
    )
    flap_max_events: int = Field(
        default=10,
        ge=0,
        le=1_000_000,
        description="Flap damping: events per agent per window; past it, events are held and "
        "the agent's final state is published when the window ends (0 turns damping off).",
    )
    retention_s: float = Field(
        default=DAY_S,
        ge=0,
        le=365 * DAY_S,
        description="How long an offline agent stays readable.",
    )
    idle_ttl_max_s: float = Field(
        default=DEFAULT_IDLE_TTL_MAX_S,
        gt=0,
        le=365 * DAY_S,
        allow_inf_nan=False,
        description="Largest `idle_ttl_s` accepted (larger ones are lowered to it).",
    )
    max_card_bytes: int = Field(
        default=DEFAULT_MAX_CARD_BYTES,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest card accepted (serialised).",
    )
    require_identity: bool = Field(
        default=False,
        description="Dead-letter every command without a broker-validated `user_id` "
        "(reason identity-required). Turn it on in production: without it, agents registered "
        "without an identity can be spoken for by anyone else without one.",
    )
    max_agents_per_identity: int = Field(
        default=10_000,
        ge=0,
        le=100_000_000,
        description="Agents one identity may own (with a record: live, idle or retained "
        "offline); a registration past it is dead-lettered as quota-exceeded (0: no limit).",
    )
    max_instances_per_agent: int = Field(
        default=1_000,
        ge=0,
        le=1_000_000,
        description="Live instances of one agent; a new instance past it is dead-lettered as "
        "quota-exceeded (0: no limit).",
    )
    max_message_bytes: int = Field(
        default=_LIMITS.max_message_bytes,
        gt=0,
        le=64 * 1024 * 1024,
        description="Largest command message accepted, checked before it is parsed "
        "(at least AGENTROSTER_MAX_CARD_BYTES).",
    )
    max_registration_bytes: int = Field(
        default=_LIMITS.max_registration_bytes,
        gt=0,
        le=64 * 1024 * 1024,
        description="Most bytes one registration stores: card, view (endpoints, skills, tags, "
        "labels), index terms and search text (at least AGENTROSTER_MAX_CARD_BYTES).",
    )
    max_endpoints: int = Field(
        default=_LIMITS.max_endpoints,
        ge=1,
        le=MAX_ENDPOINTS,
        description="Most endpoints of one registration, given or derived from its card.",
    )
    max_skills: int = Field(
        default=_LIMITS.max_skills,
        ge=1,
        le=10_000,
        description="Most skills of one registration's card.",
    )
    max_index_terms: int = Field(
        default=_LIMITS.max_index_terms,
        ge=1,
        le=10_000,
        description="Most index terms of one registration (distinct skill ids, tags, protocols, "
        "transports and labels).",
    )
    max_term_bytes: int = Field(
        default=_LIMITS.max_term_bytes,
        ge=64,
        le=65_536,
        description="Longest index term (`skill:<id>`, `tag:<tag>`, `label:<key>=<value>`...), "
        "in UTF-8 bytes.",
    )
    prefetch: int = Field(
        default=2000,
        ge=1,
        le=MAX_PREFETCH,
        description="Unacknowledged commands one worker holds at a time.",
    )
    batch_max: int = Field(
        default=500, ge=1, le=5000, description="Commands applied per Redis call."
    )
    batch_max_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        le=1024**3,
        description="A batch also ends once its commands cost this much: the bytes they store "
        "(cards, views, index terms, search texts) plus 256 per index term, so one Redis call "
        "stays short.",
    )
    batch_linger_ms: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        description="Under load, how long a partial batch waits to fill (never when idle).",
    )
    delivery_limit: int = Field(
        default=DEFAULT_DELIVERY_LIMIT,
        ge=1,
        le=1000,
        description="Deliveries of one command before it is dead-lettered as poison.",
    )
    event_log_max_age: str = Field(
        default=DEFAULT_EVENT_LOG_MAX_AGE, description="Retention of the events stream queue."
    )
    event_source: str = Field(
        default="urn:agentroster",
        pattern=r"^\S{1,1024}$",
        description="CloudEvents `source` of every event.",
    )
    events_window: int = Field(
        default=10_000,
        ge=1,
        le=100_000_000,
        description="Published events kept in Redis for replay by GET /v1/events?since=R.",
    )
    query_text_budget: int = Field(
        default=TEXT_BUDGET,
        ge=1,
        le=1_000_000,
        description="GET /v1/agents?q=: search texts one request reads at most (a long one "
        "counts once per KiB) before it answers what it found with a cursor to go on from.",
    )
    relay_lock_ttl_s: float = Field(
        default=5.0,
        ge=0.5,
        le=300,
        description="A relay that stops renewing its lock is replaced after.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Logs as plain text, or one JSON object per line."
    )
    api_host: str = Field(
        default="127.0.0.1", min_length=1, description="Address the HTTP API listens on."
    )
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port the HTTP API listens on.")
    worker_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the worker's own /healthz, /readyz and /metrics listen on.",
    )
    worker_port: int = Field(
        default=8001,
        ge=0,
        le=65535,
        description="Port of the worker's /healthz, /readyz and /metrics (0: not served).",
    )
    commands_max_length: int = Field(
        default=1_000_000,
        ge=0,
        le=2**31 - 1,
        description="Bound of the commands queue: past it RabbitMQ refuses publishes "
        "(reject-publish; agents retry). 0: no bound (as declared by earlier versions).",
    )
    dead_letter_max_length: int = Field(
        default=100_000,
        ge=0,
        le=2**31 - 1,
        description="Bound of the dead-letter queue: past it the oldest dead letters are "
        "dropped (drop-head). 0: no bound (as declared by earlier versions).",
    )

    public_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The API's public base URL (e.g. https://registry.example.com/), used in "
        "the registry's own A2A card; never taken from a request's Host header. Default: "
        "http://<api_host>:<api_port>/.",
    )
    sse_max_streams: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Event streams (GET /v1/events) one API process serves at once; over it, "
        "503 with Retry-After.",
    )
    sse_buffer_events: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Live events one event stream may fall behind by before it is ended (its "
        "client resumes from Last-Event-ID).",
    )
    sse_send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="An event stream whose client accepts nothing for this long is closed.",
    )
    mcp_max_sessions: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="MCP sessions (/mcp) one API process keeps open at once; over it, a new "
        "session is refused with 503 while the open ones go on.",
    )
    mcp_session_idle_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="An MCP session with no request in flight and no open stream for this "
        "long is closed; its client starts a new one.",
    )
    mcp_allowed_origins: list[str] = Field(
        default=[],
        max_length=64,
        description='Browser origins allowed to use /mcp, e.g. `["https://app.example"]` '
        "(JSON list); a request with any other Origin header is refused with 403 (DNS "
        "rebinding). Clients that are not browsers send no Origin and are not affected.",
    )
    discovery_source: Literal["memory", "redis"] = Field(
        default="memory",
        description="Where GET /v1/agents is answered from: `memory`, the API process's read "
        "model fed by the outbox (Redis while it loads or rebuilds), or `redis`, the query "
        "script on every request (no memory held).",
    )
    memory_scan_budget: int = Field(
        default=50_000,
        ge=1000,
        le=100_000_000,
        description="GET /v1/agents from memory: agents one request examines at most (a text "
        "`q` also counts once per KiB read) before it answers what it found with a cursor; "
        "bounds the event loop's time per request.",
    )
    min_revision_wait_s: float = Field(
        default=2.0,
        ge=0,
        le=30,
        description="GET /v1/agents?min_revision=R waits at most this long for the read model "
        "to reach R, then answers 503 revision-not-reached.",
    )
    min_revision_max_waiting: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Requests one API process lets wait for a min_revision at once; over it, "
        "503 too-many-waiting.",
    )
    readyz_show_addresses: bool = Field(
        default=False,
        description="Let /readyz name the host:port of a dependency that fails (hidden by "
        "default: anyone may call /readyz).",
    )
    # HTTP writes and API keys (issue 13)
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        max_length=256,
        description="An admin API key taken from the environment, for creating the first keys "
        "over HTTP (unset: there is no bootstrap key). At least 32 characters; never logged.",
    )
    key_cache_s: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="How long an API process trusts what it read of a key; a revoked key is "
        "refused by every API process within this long.",
    )
    key_rate_per_s: float = Field(
        default=50.0,
        gt=0,
        le=1_000_000,
        description="Requests per second one API key may make to one API process; over it, 429 "
        "with Retry-After.",
    )
    key_rate_burst: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Requests one API key may make at once above its rate.",
    )
    read_requires_key: bool = Field(
        default=False,
        description="Discovery needs a key too (any scope): for a private registry.",
    )
    compat_writes_require_key: bool = Field(
        default=True,
        description="The oo-a2a-registry heartbeat endpoints need an agent key (the unchanged "
        "client sends one as the password of its registry URL). Off: anyone may register "
        "through them, without an identity.",
    )
    gateway_users: list[str] = Field(
        default=[],
        max_length=16,
        description="Broker users whose commands may speak for an API key (the API's); "
        "empty: the registry's own broker user.",
    )
    http_ttl_s: float = Field(
        default=30.0,
        ge=0.1,
        le=365 * DAY_S,
        description="Lease TTL of an HTTP registration or heartbeat that names none.",
    )
    write_wait_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="An HTTP write with ?wait=true waits at most this long for the worker to "
        "apply it, then answers 202 without the outcome.",
    )
    http_heartbeat_batch: int = Field(
        default=256,
        ge=0,
        le=1000,
        description="HTTP heartbeats (without ?wait) that arrive while the gateway's last "
        "publish awaits its confirm go together in the next message, at most this many; 0: "
        "one command per heartbeat (a worker older than heartbeat batches needs 0).",
    )
    verify_cards: Literal["off", "requested", "all"] = Field(
        default="requested",
        description="Fetch an agent's well-known card once per registration and record whether "
        "it matches: `requested` (registrations that ask, and every oo-a2a-registry heartbeat), "
        "`all`, or `off`.",
    )
    verify_networks: list[str] = Field(
        default=[],
        max_length=256,
        description="Networks (CIDR) card verification may fetch from besides public "
        "addresses, e.g. 10.0.0.0/8; link-local and cloud metadata addresses never.",
    )
    verify_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Card verification: the whole time of one check, name resolution, every "
        "path tried and redirect included, connect to last byte.",
    )
    signature_jwks: str = Field(
        default="",
        max_length=1024 * 1024,
        description="The trust store for signed A2A cards: the path of a JWKS file, or a JWKS "
        "as inline JSON (starting with `{`); public keys only, read when the worker starts.",
    )
    signature_jku: bool = Field(
        default=True,
        description="Signed cards: fetch the signer's JWKS URL (`jku`) when the trust store "
        "has no key with the signature's `kid`, only from a host of the agent's own endpoints "
        "and through the same guard as card verification (AGENTROSTER_VERIFY_NETWORKS, "
        "AGENTROSTER_VERIFY_TIMEOUT_S).",
    )
    signature_jwks_max_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Signed cards: the largest JWKS fetched from a `jku`; a larger one makes "
        "the signature invalid.",
    )
    signature_jwks_cache_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="Signed cards: how long a key set fetched from a `jku` (or the failure to "
        "fetch it) is kept before it is fetched again.",
    )

    @property
    def public_base_url(self) -> str:
        """The API's public base URL, ending in `/`."""
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        url = self.public_url or f"http://{host}:{self.api_port}/"
        return url if url.endswith("/") else f"{url}/"

    @field_validator("broker_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        """An amqp:// or amqps:// URL with a host (and a valid port, if any)."""
        _check_url(value, ("amqp", "amqps"))
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        """A redis://, rediss:// or unix:// URL (and a valid port and database, if any)."""
        parts = _check_url(value, ("redis", "rediss", "unix"))
        if parts.scheme != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise ValueError(
                "the database (the URL's path) must be a number, e.g. redis://host:6379/0"
            )
        return value

    @field_validator("verify_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each a network in CIDR form (10.0.0.0/8, fd00::/8), checked here, not at the first
        verification."""
        for cidr in value:
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{cidr!r} is not a network in CIDR form, e.g. 10.0.0.0/8"
                ) from None
        return value

    @field_validator("signature_jwks")
    @classmethod
    def _trust_store(cls, value: str) -> str:
        """A readable file, or inline JSON that is a JWKS (`{"keys": [...]}`): a typo stops
        the worker here rather than making every signed card invalid."""
        text = value.strip()
        if not text:
            return value
        if not text.startswith("{"):
            try:
                text = Path(text).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read the JWKS file: {exc.strerror}") from None
        try:
            document = json.loads(text)
        except ValueError:
            raise ValueError("not JSON: a JWKS is an object with a keys list") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS: an object with a keys list")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        """One of Python's level names, in any case."""
        names = [n for n in logging.getLevelNamesMapping() if n not in ("WARN", "FATAL")]
        if value.upper() not in names:
            raise ValueError(f"must be one of {', '.join(sorted(names))}")
        return value.upper()

    @field_validator("event_log_max_age")
    @classmethod
    def _max_age(cls, value: str) -> str:
        """RabbitMQ's `x-max-age` format: checked here, not after half the topology is declared."""
        if not MAX_AGE_PATTERN.fullmatch(value):
            raise ValueError(
                "must be a positive whole number and a unit, Y, M, D, h, m or s (e.g. 7D, 12h)"
            )
        return value

    def limits(self) -> Limits:
        """What the worker accepts from one message and one registration."""
        return Limits(
            ttl=TtlBounds(self.ttl_min_s, self.ttl_max_s),
            idle_ttl=TtlBounds(min_s=_LIMITS.idle_ttl.min_s, max_s=self.idle_ttl_max_s),
            max_card_bytes=self.max_card_bytes,
            max_message_bytes=self.max_message_bytes,
            max_registration_bytes=self.max_registration_bytes,
            max_endpoints=self.max_endpoints,
            max_skills=self.max_skills,
            max_index_terms=self.max_index_terms,
            max_term_bytes=self.max_term_bytes,
            require_identity=self.require_identity,
            gateway_users=frozenset(self.gateway_users or [broker_user(self.broker_url)]),
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Settings that only make sense together."""
        if self.ttl_min_s > self.ttl_max_s:
            raise ValueError(
                f"AGENTROSTER_TTL_MIN_S ({self.ttl_min_s:g}) is above "
                f"AGENTROSTER_TTL_MAX_S ({self.ttl_max_s:g})"
            )
        for name in ("max_message_bytes", "max_registration_bytes"):
            if getattr(self, name) < self.max_card_bytes:
                raise ValueError(
                    f"AGENTROSTER_{name.upper()} ({getattr(self, name)}) is below "
                    f"AGENTROSTER_MAX_CARD_BYTES ({self.max_card_bytes}): no card that size "
                    "could be registered"
                )
        # at a gap of one sweep or less, every sweep would take itself for a gap: no lease
        # would ever expire
        if self.reaper_gap_s < 2 * self.sweep_interval_s:
            raise ValueError(
                f"AGENTROSTER_REAPER_GAP_S ({self.reaper_gap_s:g}) must be at least twice "
                f"AGENTROSTER_SWEEP_INTERVAL_S ({self.sweep_interval_s:g})"
            )
        # expiry is as precise as one sweep: a shorter lease would live up to twice its TTL
        if self.ttl_min_s < self.sweep_interval_s:
            raise ValueError(
                f"AGENTROSTER_TTL_MIN_S ({self.ttl_min_s:g}) must be at least "
                f"AGENTROSTER_SWEEP_INTERVAL_S ({self.sweep_interval_s:g})"
            )
        # a bound at or under the backlog limit: publishes are refused before the reaper would
        # pause for the backlog, so leases would expire while renewals are being refused
        if 0 < self.commands_max_length <= self.reaper_backlog_limit:
            raise ValueError(
                f"AGENTROSTER_COMMANDS_MAX_LENGTH ({self.commands_max_length}) must be above "
                f"AGENTROSTER_REAPER_BACKLOG_LIMIT ({self.reaper_backlog_limit}), or 0"
            )
        return self


def _check_url(value: str, schemes: tuple[str, ...]) -> _SplitResult:
    """Parse a service URL; ValueError naming what is wrong (never the password)."""
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("has no host")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("has no socket path")
    return parts
