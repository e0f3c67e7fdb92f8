"""SIGTERM with several Beacons in one process: every one deregisters (client/_signals.py)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from agentroster.worker import Worker
from tests.helpers import EventCollector, RunningProgram

PROGRAM = Path(__file__).parent / "programs" / "two_beacons.py"


async def test_sigterm_deregisters_both_beacons_of_a_process(
    worker: Worker, events: EventCollector, repo_root: Path
) -> None:
    """Both agents leave with reason `deregistered`, then SIGTERM's default ends the process."""
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": worker.settings.broker_url,
        "AGENTROSTER_PREFIX": worker.settings.prefix,
        "PYTHONUNBUFFERED": "1",
    }
    agents = ("first-of-two", "second-of-two")
    async with RunningProgram.run(
        sys.executable, str(PROGRAM), *agents, env=env, cwd=repo_root
    ) as program:
        await program.wait_for_line(lambda line: line == "registered")
        await events.wait_until(
            lambda evs: {e.agent_id for e in evs if e.kind == "joined"} >= set(agents)
        )
        assert await program.stop() == -signal.SIGTERM, program.output
    await events.wait_until(
        lambda evs: {e.agent_id for e in evs if e.kind == "left"} >= set(agents)
    )
    left = {e.agent_id: e.data["reason"] for e in events.of("left")}
    assert left == dict.fromkeys(agents, "deregistered")
