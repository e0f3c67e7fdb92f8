"""Configuration of the registry, from `AGENTROSTER_*` environment variables.

Built where it is used (`Settings()` in the CLI, or passed in by tests); nothing reads the
environment at import time.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentroster.contracts import DEFAULT_MAX_CARD_BYTES
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.contracts.topology import DEFAULT_DELIVERY_LIMIT, DEFAULT_EVENT_LOG_MAX_AGE


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
    max_card_bytes: int = Field(
        default=DEFAULT_MAX_CARD_BYTES, gt=0, description="Largest card accepted (serialised)."
    )
    prefetch: int = Field(
        default=2000, gt=0, description="Unacknowledged commands one worker holds at a time."
    )
    batch_max: int = Field(default=500, gt=0, description="Commands applied per Redis call.")
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
    relay_lock_ttl_s: float = Field(
        default=5.0, gt=0, description="A relay that stops renewing its lock is replaced after."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port the HTTP API listens on.")
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
    readyz_show_addresses: bool = Field(
        default=False,
        description="Let /readyz name the host:port of a dependency that fails (hidden by "
        "default: anyone may call /readyz).",
    )

    @property
    def public_base_url(self) -> str:
        """The API's public base URL, ending in `/`."""
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        url = self.public_url or f"http://{host}:{self.api_port}/"
        return url if url.endswith("/") else f"{url}/"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Settings that only make sense together."""
        if self.ttl_min_s > self.ttl_max_s:
            raise ValueError(
                f"AGENTROSTER_TTL_MIN_S ({self.ttl_min_s:g}) is above "
                f"AGENTROSTER_TTL_MAX_S ({self.ttl_max_s:g})"
            )
        # at a gap of one sweep or less, every sweep would take itself for a gap: no lease
        # would ever expire
        if self.reaper_gap_s < 2 * self.sweep_interval_s:
            raise ValueError(
                f"AGENTROSTER_REAPER_GAP_S ({self.reaper_gap_s:g}) must be at least twice "
                f"AGENTROSTER_SWEEP_INTERVAL_S ({self.sweep_interval_s:g})"
            )
        return self
