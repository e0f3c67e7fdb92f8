"""Send an HTTP write's command through the gateway: the REST writes publish with `publish`; the
compatibility endpoints `check` it as the worker would first, then `send` it.

The peers' clients are answered at once, so what the worker would dead-letter is refused here
first, with the same reason (`registry.prepare` is the worker's own check): a peer client that
only logs failures gets a 4xx it can log, rather than a 202 for a registration that never
happens. What only the worker can know (the agent belongs to another identity) comes back as
the outcome of a `wait`ed send. Statuses are those of the REST writes
(`write_answers.rejected_error`); a broker that does not confirm is 503 `broker-unavailable`
with `Retry-After`.
"""

from __future__ import annotations

from fastapi import Request
from starlette.applications import Starlette

from agentroster.api.auth import Principal
from agentroster.api.errors import ApiError
from agentroster.api.gateway import BrokerUnavailable, CommandGateway, Outcome, command_kind
from agentroster.api.write_answers import SeqClock, rejected_error
from agentroster.contracts import Topology
from agentroster.contracts.commands import Command, command_json
from agentroster.registry.prepare import Limits, Rejected, prepare


def seq_clock(request: Request) -> SeqClock:
    """The API process's one seq clock, shared with the REST writes (kept on the app)."""
    return app_seq_clock(request.app)


def app_seq_clock(app: Starlette) -> SeqClock:
    """The seq clock kept on `app` (made on first use)."""
    clock: SeqClock | None = getattr(app.state, "agentroster_seq_clock", None)
    if clock is None:
        clock = app.state.agentroster_seq_clock = SeqClock()
    return clock


def _ids(command: Command) -> dict[str, object]:
    return {"agent_id": command.agent_id, "instance_id": command.instance_id, "seq": command.seq}


def check(command: Command, principal: Principal | None, limits: Limits) -> None:
    """Refuse, as `ApiError`, a command the worker would dead-letter on its own content."""
    key = Topology.command_key(command.agent_id, command_kind(command))
    body = command_json(command)
    try:
        prepare(key, body, principal.identity if principal else "", limits)
    except Rejected as exc:
        raise rejected_error(Outcome("rejected", exc.reason, exc.detail), _ids(command)) from None


async def publish(
    gateway: CommandGateway, command: Command, principal: Principal | None, *, wait: bool
) -> Outcome:
    """Publish `command` for `principal`: its outcome, or 503 `broker-unavailable`."""
    try:
        return await gateway.send(command, principal, wait=wait)
    except BrokerUnavailable as exc:
        raise ApiError(
            503,
            "broker-unavailable",
            f"the broker did not take the command; retry later ({exc})",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None


async def send(
    gateway: CommandGateway, command: Command, principal: Principal | None, *, wait: bool
) -> Outcome:
    """Publish `command` for `principal`; refuse (as `ApiError`) what the worker refused."""
    outcome = await publish(gateway, command, principal, wait=wait)
    if outcome.status == "rejected":
        raise rejected_error(outcome, _ids(command))
    return outcome
