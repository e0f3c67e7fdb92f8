"""The agent side of agentroster: announce an agent over RabbitMQ, discover others over HTTP,
hold a live copy of the registry (`Roster`).

Needs only the base install (pydantic, aio-pika, orjson, httpx): no FastAPI, no Redis.
"""

from agentroster.client._errors import CommandRefused, RegistryNotDeclared
from agentroster.client._publisher import CommandPublisher
from agentroster.client.beacon import Announcement, Beacon, announce
from agentroster.client.discovery import DiscoveryClient, DiscoveryError
from agentroster.client.models import Agent, AgentPage, DetailedAgent
from agentroster.client.roster import Change, Changes, ChangesLost, Roster, RosterClosed

__all__ = [
    "Agent",
    "AgentPage",
    "Announcement",
    "Beacon",
    "Change",
    "Changes",
    "ChangesLost",
    "CommandPublisher",
    "CommandRefused",
    "DetailedAgent",
    "DiscoveryClient",
    "DiscoveryError",
    "RegistryNotDeclared",
    "Roster",
    "RosterClosed",
    "announce",
]
