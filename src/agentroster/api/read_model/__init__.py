"""The API's in-memory read model: the registry's agents, indexed, fed by the outbox follower."""

from agentroster.api.read_model.model import (
    ReadModel,
    RevisionAhead,
    RevisionNotReached,
    TooManyWaiting,
)

__all__ = ["ReadModel", "RevisionAhead", "RevisionNotReached", "TooManyWaiting"]
