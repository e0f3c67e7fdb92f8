"""An operator's view and change of who owns an agent (invariant 6).

An agent is bound to the identity its first registration carried; only that identity's
commands are applied to it (`apply.lua`). When an owner is gone for good (its broker user was
deleted, a team handed the agent over), an operator releases the agent, so that its next
registration binds it anew, or transfers it to another identity at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from agentroster.store.keys import Keys
from agentroster.store.scripts import OWNER, Script


class UnknownAgent(LookupError):
    """The registry has no record of the agent (never registered, or past its retention)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns an agent: `bound` is False for an agent no registration has bound yet."""

    bound: bool
    identity: str  # the broker user name; "" for an agent registered without one

    def describe(self) -> str:
        """The owner in words, for the CLI."""
        if not self.bound:
            return "nobody (its next registration binds it)"
        return f"identity {self.identity!r}" if self.identity else "no identity"


class Ownership:
    """Shows, releases and transfers the ownership of agents in one registry's Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._keys = Keys(prefix)
        self._script = Script(redis, OWNER)

    async def _run(
        self, agent_id: str, action: Literal["show", "release", "transfer"], to: str = ""
    ) -> Owner:
        args = {"P": self._keys.base, "agent_id": agent_id, "action": action, "to": to}
        reply, _ = self._script.head(await self._script([self._keys.agent(agent_id)], args))
        if not reply["found"]:
            raise UnknownAgent(agent_id)
        before = reply["before"]
        return Owner(bool(reply["bound"]), before.decode() if isinstance(before, bytes) else before)

    async def show(self, agent_id: str) -> Owner:
        """The agent's owner."""
        return await self._run(agent_id, "show")

    async def release(self, agent_id: str) -> Owner:
        """Unbind the agent; its next registration binds it again. Returns the owner before."""
        return await self._run(agent_id, "release")

    async def transfer(self, agent_id: str, to: str) -> Owner:
        """Bind the agent to identity `to` ("" for no identity). Returns the owner before."""
        return await self._run(agent_id, "transfer", to)
