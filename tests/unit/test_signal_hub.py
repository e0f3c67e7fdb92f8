"""The process-wide signal handler of Beacons (client/_signals.py), in this process."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from agentroster.client._signals import SignalHub


class Member:
    """A stand-in Beacon that records its closing."""

    def __init__(self, agent_id: str, *, waiting: bool = True) -> None:
        self.agent_id = agent_id
        self.waiting = waiting
        self.closed_on: signal.Signals | None = None
        self.woken = asyncio.Event()

    def waits_for_signal(self) -> bool:
        return self.waiting

    async def close_on_signal(self, sig: signal.Signals) -> None:
        self.closed_on = sig

    def signal_received(self) -> None:
        self.woken.set()


@pytest.fixture
def own_sigterm_handler() -> Iterator[list[int]]:
    """A Python-level SIGTERM handler of the program's own, restored afterwards."""
    calls: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        calls.append(signum)

    before = signal.signal(signal.SIGTERM, handler)
    yield calls
    signal.signal(signal.SIGTERM, before)


async def test_every_member_closes_on_one_signal(own_sigterm_handler: list[int]) -> None:
    """Two members, one SIGTERM: both close; a member waits, so the signal is not re-sent."""
    hub = SignalHub()
    first, second = Member("first"), Member("second")
    assert hub.join(first)
    assert hub.join(second)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(first.woken.wait(), second.woken.wait()), 10)
    assert (first.closed_on, second.closed_on) == (signal.SIGTERM, signal.SIGTERM)
    assert own_sigterm_handler == []  # waited for: not delivered again
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    assert getattr(handler, "__name__", "") == "handler"  # the program's own is back


async def test_the_signal_goes_on_to_the_previous_handler_when_nobody_waits(
    own_sigterm_handler: list[int],
) -> None:
    """Nobody waits for the signal: after closing, the previous handler gets it."""
    hub = SignalHub()
    member = Member("alone", waiting=False)
    assert hub.join(member)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(member.woken.wait(), 10)
    for _ in range(100):  # the re-sent signal runs its Python handler at the next bytecode
        if own_sigterm_handler:
            break
        await asyncio.sleep(0)
    assert own_sigterm_handler == [signal.SIGTERM]


async def test_the_last_member_out_restores_the_previous_handler(
    own_sigterm_handler: list[int],
) -> None:
    """Joining replaces the program's handler; when the last member leaves, it is back."""
    previous = signal.getsignal(signal.SIGTERM)
    hub = SignalHub()
    first, second = Member("first"), Member("second")
    hub.join(first)
    hub.join(second)
    assert signal.getsignal(signal.SIGTERM) is not previous
    hub.leave(first)
    assert signal.getsignal(signal.SIGTERM) is not previous  # second still needs it
    hub.leave(second)
    assert signal.getsignal(signal.SIGTERM) is previous
