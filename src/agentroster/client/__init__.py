"""The agent side of agentroster: register, heartbeat, deregister over RabbitMQ.

Needs only the base install (pydantic, aio-pika, orjson): no FastAPI, no Redis.
"""

from agentroster.client._publisher import CommandPublisher
from agentroster.client.beacon import Announcement, Beacon, announce

__all__ = ["Announcement", "Beacon", "CommandPublisher", "announce"]
