"""One SIGTERM/SIGINT handler for every running `Beacon` of the process.

Each Beacon used to install its own loop signal handler, replacing the previous Beacon's: on
SIGTERM only the last one deregistered, and the others' agents expired instead of leaving. Now
the first Beacon to open installs one handler per signal (remembering what was there before),
every open Beacon joins it, and the last to close restores the previous handling. On a
signal, the handler gives the signals back to their previous handling and deregisters every
Beacon at once; then, unless a program waits in `Beacon.wait_for_signal()`, it delivers the
signal again, to that previous handling (SIGTERM's default ends the process, SIGINT's raises
KeyboardInterrupt or cancels `asyncio.run`'s main task).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any, Protocol

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Closable(Protocol):
    """What the hub needs of a Beacon."""

    agent_id: str

    def waits_for_signal(self) -> bool:
        """Whether a program waits in `wait_for_signal()` (it then exits by itself)."""
        ...

    async def close_on_signal(self, sig: signal.Signals) -> None:
        """Deregister and disconnect because of `sig`; must not raise."""
        ...

    def signal_received(self) -> None:
        """Wake whoever waits in `wait_for_signal()`."""
        ...


class SignalHub:
    """The process-wide handler (see the module docstring); one per event loop in use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._members: dict[int, Closable] = {}  # by id, in the order they joined
        self._previous: dict[signal.Signals, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def join(self, beacon: Closable) -> bool:
        """Deregister `beacon` on SIGTERM/SIGINT; False where no handler can be installed
        (not the main thread, Windows)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new asyncio.run(): the old loop's handlers are gone
            self._loop, self._members, self._previous = loop, {}, {}
        if not self._previous and not self._install(loop):
            return False
        self._members[id(beacon)] = beacon
        return True

    def leave(self, beacon: Closable) -> None:
        """Stop handling signals for `beacon`; the last one out restores the previous handling."""
        if self._members.pop(id(beacon), None) is not None and not self._members:
            self._restore()

    def _install(self, loop: asyncio.AbstractEventLoop) -> bool:
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        installed: list[signal.Signals] = []
        for sig in SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                for done in installed:
                    loop.remove_signal_handler(done)
                    signal.signal(done, previous[done])
                return False
            installed.append(sig)
        self._previous = previous
        return True

    def _restore(self) -> None:
        loop, previous, self._previous = self._loop, self._previous, {}
        for sig, handler in previous.items():
            if loop is not None and not loop.is_closed():
                loop.remove_signal_handler(sig)
            # asyncio leaves SIG_DFL (SIGINT: default_int_handler); put back what was there
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _on_signal(self, sig: signal.Signals) -> None:
        members = list(self._members.values())
        self._members = {}
        self._restore()
        log.info("%s: deregistering %d agent instance(s)", sig.name, len(members))
        task = asyncio.get_running_loop().create_task(self._shutdown(sig, members))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self, sig: signal.Signals, members: list[Closable]) -> None:
        try:
            await asyncio.gather(*(m.close_on_signal(sig) for m in members))
        finally:
            # asked before waking the waiters: once woken they stop waiting
            waiting = any(m.waits_for_signal() for m in members)
            for member in members:
                member.signal_received()
            if not waiting:
                # nobody waits for the signal: deliver it again to the previous handling
                os.kill(os.getpid(), sig)


#: The process's hub: signals are process-wide, so is their handler.
HUB = SignalHub()
