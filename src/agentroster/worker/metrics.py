"""Prometheus metrics of the worker (exposed by the API's /metrics, or the worker's own)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class WorkerMetrics:
    """Counters of one worker; each worker gets its own registry so tests never share state."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.commands = Counter(
            "agentroster_commands_total",
            "Commands taken from the queue, by kind and outcome.",
            ["kind", "outcome"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "agentroster_dead_lettered_total",
            "Commands dead-lettered, by reason.",
            ["reason"],
            registry=r,
        )
        self.stuck_instances = Counter(
            "agentroster_stuck_instances_total",
            "Times an instance's commands began to be ignored again and again as duplicates "
            "or late (a client whose seq went backwards, or a replay).",
            registry=r,
        )
        self.batches = Counter(
            "agentroster_command_batches_total", "Redis script calls applying commands.", registry=r
        )
        self.events_relayed = Counter(
            "agentroster_events_relayed_total",
            "Events confirmed by RabbitMQ, by kind.",
            ["kind"],
            registry=r,
        )
        self.leases_expired = Counter(
            "agentroster_leases_expired_total", "Instance leases expired by the reaper.", registry=r
        )
        self.leases_graced = Counter(
            "agentroster_leases_graced_total",
            "Leases given a full TTL after a gap in the reaper's sweeps.",
            registry=r,
        )
        self.leases_held = Counter(
            "agentroster_leases_held_total",
            "Due leases held back: by the mass-expiry brake, or in the recovery window after "
            "Redis lost its data.",
            registry=r,
        )
        self.recovering = Gauge(
            "agentroster_recovering",
            "1 during the recovery window after Redis lost its data (no lease expires).",
            registry=r,
        )
        self.flapping = Counter(
            "agentroster_flapping_agents_total",
            "Times an agent's events began to be damped (more than the flap limit per window).",
            registry=r,
        )
        self.reaper_paused = Gauge(
            "agentroster_reaper_paused",
            "1 while the reaper holds expiries (broker down, commands backlog).",
            registry=r,
        )
        self.outbox_depth = Gauge(
            "agentroster_outbox_depth", "Events written but not yet confirmed.", registry=r
        )
        self.commands_backlog = Gauge(
            "agentroster_commands_backlog",
            "Commands ready in the commands queue, as the reaper last read it (each sweep).",
            registry=r,
        )
        self.broker_connection_lost = Counter(
            "agentroster_broker_connection_lost_total",
            "Times the worker's broker connection closed while it was running (it reconnects).",
            registry=r,
        )
        self.verifications = Counter(
            "agentroster_card_verifications_total",
            "Checks of agents' well-known cards, by result: verified, mismatch, refused (by "
            "the guard: nothing sent), unreachable, too-large, dropped (the queue was full).",
            ["result"],
            registry=r,
        )
        self.signature_checks = Counter(
            "agentroster_signature_checks_total",
            "Checks of signed A2A cards, by result: valid, or why invalid (malformed, "
            "algorithm-refused, no-trusted-key, jku-refused, jku-unreachable, jku-too-large, "
            "jku-bad-jwks, bad-signature), or dropped (the queue was full).",
            ["result"],
            registry=r,
        )
        self.redis_errors = Counter(
            "agentroster_redis_errors_total", "Failed Redis calls (retried).", registry=r
        )
