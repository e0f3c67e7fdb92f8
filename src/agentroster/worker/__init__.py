"""The registry worker: consumes commands, keeps leases in Redis, relays events."""

from agentroster.worker.app import Worker, create_worker

__all__ = ["Worker", "create_worker"]
