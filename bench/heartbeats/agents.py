"""The agents of a heartbeat run and the commands they send (register once, then heartbeats)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentroster.contracts import Heartbeat, Register, Topology, card_digest

TTL_S = 3600.0  # nothing expires during a run


@dataclass(frozen=True)
class Agents:
    """`count` agents with one instance each; heartbeat j goes to agent j % count."""

    count: int
    ids: list[str]
    instances: list[str]
    cards: list[dict[str, Any]]
    digests: list[str]

    @classmethod
    def make(cls, count: int) -> Agents:
        """`count` agents with fresh instance ids and their cards' digests."""
        ids = [f"bench-{k:06d}" for k in range(count)]
        instances = [f"bench-host-{k:06d}-{secrets.token_hex(4)}" for k in range(count)]
        cards: list[dict[str, Any]] = [
            {
                "name": f"Bench agent {k}",
                "description": "An agent of the agentroster heartbeat benchmark.",
                "version": "1.0.0",
                "skills": [{"id": "echo", "name": "Echo", "tags": ["bench", "echo"]}],
            }
            for k in range(count)
        ]
        return cls(count, ids, instances, cards, [card_digest(c) for c in cards])


def register_command(agents: Agents, k: int) -> tuple[str, str, bytes]:
    """(routing key, AMQP type, body) of agent k's register command."""
    command = Register(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=1,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        interval_s=10.0,
        card=agents.cards[k],
    )
    body = command.model_dump_json(exclude_none=True).encode()
    return Topology.command_key(agents.ids[k], "register"), "register", body


def heartbeat_command(agents: Agents, k: int, seq: int) -> tuple[str, str, bytes]:
    """(routing key, AMQP type, body) of a heartbeat of agent k's instance."""
    command = Heartbeat(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=seq,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        card_digest=agents.digests[k],
    )
    body = command.model_dump_json(exclude_none=True).encode()
    return Topology.command_key(agents.ids[k], "heartbeat"), "heartbeat", body


@dataclass(frozen=True)
class Round:
    """The heartbeats of one variant: j -> agent j % n, seq base + j // n (always new seqs)."""

    agents: Agents
    heartbeats: int
    base_seq: int

    def target(self, j: int) -> tuple[int, int]:
        """(agent index, seq) of the round's heartbeat j."""
        return j % self.agents.count, self.base_seq + j // self.agents.count

    def final_seqs(self) -> dict[int, int]:
        """Agent index -> the seq its instance holds once the round is applied."""
        finals: dict[int, int] = {}
        for j in range(max(0, self.heartbeats - self.agents.count), self.heartbeats):
            k, seq = self.target(j)
            finals[k] = seq
        return finals
