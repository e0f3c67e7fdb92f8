"""agentroster: an event-driven registry for AI agents.

Agents announce themselves over RabbitMQ (`agentroster.client`); the registry keeps their
leases in Redis and publishes agent.joined / agent.updated / agent.left / agent.deleted.

The names below come from `agentroster.client` and are imported on first use (module
`__getattr__`), so `import agentroster.contracts` loads the wire contract alone: not aio-pika,
not httpx.
"""

import importlib
import typing

if typing.TYPE_CHECKING:
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

_FROM_CLIENT = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> object:
    """Import a client name on first use (see the module docstring)."""
    if name in _FROM_CLIENT:
        return getattr(importlib.import_module("agentroster.client"), name)
    raise AttributeError(f"module 'agentroster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
