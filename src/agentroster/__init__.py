"""agentroster: an event-driven registry for AI agents.

Agents announce themselves over RabbitMQ (`agentroster.client`); the registry keeps their
leases in Redis and publishes agent.joined / agent.updated / agent.left / agent.deleted.
"""

from agentroster.client import (
    Announcement,
    Beacon,
    CommandRefused,
    RegistryNotDeclared,
    announce,
)

__version__ = "0.1.0"

__all__ = [
    "Announcement",
    "Beacon",
    "CommandRefused",
    "RegistryNotDeclared",
    "__version__",
    "announce",
]
