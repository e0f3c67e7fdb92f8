"""The agents of a discovery run, and random queries about them with their expected answers."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime
from typing import Any

from agentroster.contracts import Register, Topology

SKILLS = 200  # distinct skill ids
SKILLS_PER_AGENT = 8
TAGS = 30  # distinct tags
TAGS_PER_AGENT = 3
TTL_S = 3600.0  # nothing expires during a run
PAIRS = 1000  # two-skill queries are drawn from this many random pairs


def skill_id(number: int) -> str:
    """The id of skill `number` (zero-padded, so ids sort as numbers)."""
    return f"skill-{number:03d}"


def agent_id(k: int) -> str:
    """The id of agent `k`."""
    return f"bench-{k:06d}"  # a DNS label; id order is k order


class Population:
    """Agents 0, 1, 2...: agent k's skills and tags come from one seeded generator, in k order.

    So the first n agents are the same whatever size is grown to, and a ceiling process that
    grows its own copy from the same seed knows the same agents.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.skills: list[tuple[int, ...]] = []  # agent k -> its skill numbers
        self.tags: list[tuple[int, ...]] = []  # agent k -> its tag numbers
        self.holders: list[list[int]] = [[] for _ in range(SKILLS)]  # skill -> agents, k order

    def grow(self, size: int) -> None:
        """Add agents up to `size` (the first ones stay as they were)."""
        for k in range(len(self.skills), size):
            skills = tuple(sorted(self._rng.sample(range(SKILLS), SKILLS_PER_AGENT)))
            self.skills.append(skills)
            self.tags.append(tuple(self._rng.sample(range(TAGS), TAGS_PER_AGENT)))
            for s in skills:
                self.holders[s].append(k)

    def card(self, k: int) -> dict[str, Any]:
        """Agent k's A2A v1.0 card: one JSON-RPC interface, 8 skills, 3 tags among them."""
        tags = [f"tag-{t:02d}" for t in self.tags[k]]
        return {
            "name": f"Bench agent {k}",
            "description": "An agent of the agentroster discovery benchmark.",
            "version": "1.0.0",
            "supportedInterfaces": [
                {
                    "url": f"https://agent-{k}.bench.example/a2a",
                    "protocolBinding": "JSONRPC",
                    "protocolVersion": "1.0",
                }
            ],
            "capabilities": {"streaming": False},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["application/json"],
            "skills": [
                {
                    "id": skill_id(s),
                    "name": f"Skill {s}",
                    "description": f"Performs task {s} of the benchmark.",
                    "tags": [tags[j % TAGS_PER_AGENT]],
                }
                for j, s in enumerate(self.skills[k])
            ],
        }

    def register_command(self, k: int) -> tuple[str, str, bytes]:
        """(routing key, AMQP type, body) of agent k's register command."""
        command = Register(
            agent_id=agent_id(k),
            instance_id=f"{agent_id(k)}-i1",
            seq=1,
            sent_at=datetime.now(UTC),
            ttl_s=TTL_S,
            interval_s=10.0,
            card=self.card(k),
        )
        body = command.model_dump_json(exclude_none=True).encode()
        return Topology.command_key(agent_id(k), "register"), "register", body


class Queries:
    """Random queries over the first `size` agents, with the number of matches each expects."""

    def __init__(self, population: Population, size: int, seed: int) -> None:
        self.size = size
        self.counts = [bisect.bisect_left(h, size) for h in population.holders]
        rng = random.Random(seed)
        self.pairs: list[tuple[tuple[str, ...], int]] = []
        for _ in range(PAIRS):
            a, b = rng.sample(range(SKILLS), 2)
            both = set(population.holders[a][: self.counts[a]])
            both.intersection_update(population.holders[b][: self.counts[b]])
            self.pairs.append(((skill_id(a), skill_id(b)), len(both)))

    def skill(self, rng: random.Random) -> tuple[tuple[str, ...], int]:
        """A random skill and how many agents hold it."""
        s = rng.randrange(SKILLS)
        return (skill_id(s),), self.counts[s]

    def pair(self, rng: random.Random) -> tuple[tuple[str, ...], int]:
        """A random pair of skills and how many agents hold both."""
        return self.pairs[rng.randrange(PAIRS)]

    def agent(self, rng: random.Random) -> str:
        """A random agent's id."""
        return agent_id(rng.randrange(self.size))
