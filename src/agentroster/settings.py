"""Configuration of the registry, from `AGENTROSTER_*` environment variables.

Built where it is used (`Settings()` in the CLI, or passed in by tests); nothing reads the
environment at import time.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentroster.contracts import DEFAULT_MAX_CARD_BYTES
from agentroster.contracts.commands import MAX_ENDPOINTS
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.contracts.topology import DEFAULT_DELIVERY_LIMIT, DEFAULT_EVENT_LOG_MAX_AGE
from agentroster.registry.prepare import DEFAULT_IDLE_TTL_MAX_S, Limits
from agentroster.registry.rules import TtlBounds
from agentroster.registry.terms import TEXT_BUDGET

_LIMITS = Limits()  # the defaults of the registration limits below


class Settings(BaseSettings):
    """Every knob of the worker and the API; the env var is `AGENTROSTER_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="AGENTROSTER_", extra="ignore")

    broker_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/", description="RabbitMQ URL."
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL.")
    prefix: str = Field(
        default="agentroster",
        pattern=AGENT_ID_PATTERN,
        description="Prefix of every exchange, queue and Redis key of this registry.",
    )
    ttl_min_s: float = Field(default=5.0, gt=0, description="Smallest lease TTL accepted.")
    ttl_max_s: float = Field(default=24 * 3600.0, gt=0, description="Largest lease TTL accepted.")
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="How often the reaper looks for expired leases."
    )
    reaper_gap_s: float = Field(
        default=5.0,
        gt=0,
        description="No sweep for this long: every lease gets a full TTL before it may expire "
        "(at least twice the sweep interval).",
    )
    reaper_backlog_limit: int = Field(
        default=10_000,
        ge=0,
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
        default=20, ge=1, description="The brake applies from this many live agents."
    )
    flap_window_s: float = Field(
        default=60.0, gt=0, description="Flap damping: the window events are counted in."
    )
    flap_max_events: int = Field(
        default=10,
        ge=0,
        description="Flap damping: events per agent per window; past it, events are held and "
        "the agent's final state is published when the window ends (0 turns damping off).",
    )
    retention_s: float = Field(
        default=24 * 3600.0, ge=0, description="How long an offline agent stays readable."
    )
    idle_ttl_max_s: float = Field(
        default=DEFAULT_IDLE_TTL_MAX_S,
        gt=0,
        allow_inf_nan=False,
        description="Largest `idle_ttl_s` accepted (larger ones are lowered to it).",
    )
    max_card_bytes: int = Field(
        default=DEFAULT_MAX_CARD_BYTES, gt=0, description="Largest card accepted (serialised)."
    )
    max_message_bytes: int = Field(
        default=_LIMITS.max_message_bytes,
        gt=0,
        description="Largest command message accepted, checked before it is parsed "
        "(at least AGENTROSTER_MAX_CARD_BYTES).",
    )
    max_registration_bytes: int = Field(
        default=_LIMITS.max_registration_bytes,
        gt=0,
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
        default=_LIMITS.max_skills, ge=1, description="Most skills of one registration's card."
    )
    max_index_terms: int = Field(
        default=_LIMITS.max_index_terms,
        ge=1,
        description="Most index terms of one registration (distinct skill ids, tags, protocols, "
        "transports and labels).",
    )
    max_term_bytes: int = Field(
        default=_LIMITS.max_term_bytes,
        ge=64,
        description="Longest index term (`skill:<id>`, `tag:<tag>`, `label:<key>=<value>`...), "
        "in UTF-8 bytes.",
    )
    prefetch: int = Field(
        default=2000, gt=0, description="Unacknowledged commands one worker holds at a time."
    )
    batch_max: int = Field(default=500, gt=0, description="Commands applied per Redis call.")
    batch_max_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="A batch also ends once its commands cost this much: the bytes they store "
        "(cards, views, index terms, search texts) plus 256 per index term, so one Redis call "
        "stays short.",
    )
    batch_linger_ms: float = Field(
        default=5.0,
        ge=0,
        description="Under load, how long a partial batch waits to fill (never when idle).",
    )
    delivery_limit: int = Field(
        default=DEFAULT_DELIVERY_LIMIT,
        gt=0,
        description="Deliveries of one command before it is dead-lettered as poison.",
    )
    event_log_max_age: str = Field(
        default=DEFAULT_EVENT_LOG_MAX_AGE, description="Retention of the events stream queue."
    )
    event_source: str = Field(
        default="urn:agentroster", description="CloudEvents `source` of every event."
    )
    events_window: int = Field(
        default=10_000,
        gt=0,
        description="Published events kept in Redis for replay by GET /v1/events?since=R.",
    )
    query_text_budget: int = Field(
        default=TEXT_BUDGET,
        ge=1,
        description="GET /v1/agents?q=: search texts one request reads at most (a long one "
        "counts once per KiB) before it answers what it found with a cursor to go on from.",
    )
    relay_lock_ttl_s: float = Field(
        default=5.0, gt=0, description="A relay that stops renewing its lock is replaced after."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port the HTTP API listens on.")

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
        return self
