"""The API's in-memory read model: the registry's agents, indexed, fed by the outbox follower."""

from agentroster.api.read_model.model import ReadModel, RevisionNotReached, TooManyWaiting

__all__ = ["ReadModel", "RevisionNotReached", "TooManyWaiting"]
