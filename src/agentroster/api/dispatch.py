"""Send a command for an HTTP caller: checked as the worker would, then through the gateway.

The compatibility endpoints answer their peers' clients at once, so what the worker would
dead-letter is refused here first, with the same reason (`registry.prepare` is the worker's own
check): a peer client that only logs failures gets a 4xx it can log, rather than a 202 for a
registration that never happens. What only the worker can know (the agent belongs to another
identity) comes back as the outcome of a `wait`ed send.

    refusal                                  status  code
    broker did not confirm                   503     broker-unavailable (Retry-After)
    no API (gateway) configured for writes   503     writes-unavailable
    identity-required                        401     identity-required
    forbidden (another identity's agent)     403     forbidden
    quota-exceeded                           429     quota-exceeded
    any other dead-letter reason             422     the reason (invalid-card, card-too-large...)
"""

from __future__ import annotations

import time

from agentroster.api.auth import WWW_AUTHENTICATE, Principal
from agentroster.api.errors import ApiError
from agentroster.api.gateway import BrokerUnavailable, CommandGateway, Outcome
from agentroster.contracts import Topology
from agentroster.contracts.commands import Command, Deregister, Heartbeat, Register
from agentroster.contracts.topology import CommandKind
from agentroster.registry.prepare import Limits, Rejected, prepare

#: The HTTP status of a command the worker refused, by dead-letter reason (else 422).
REJECTION_STATUS = {"identity-required": 401, "forbidden": 403, "quota-exceeded": 429}


def api_seq() -> int:
    """A `seq` from the API's clock in microseconds: later sends number higher.

    Peer clients do not number their messages; API replicas must keep their clocks in step
    (NTP), or a heartbeat through a replica behind the last one is ignored as late.
    """
    return time.time_ns() // 1000


def kind_of(command: Command) -> CommandKind:
    """The command's kind, as its routing key names it."""
    match command:
        case Register():
            return "register"
        case Heartbeat():
            return "heartbeat"
        case Deregister():
            return "deregister"
    raise AssertionError("unreachable")  # pragma: no cover


def rejection(reason: str, message: str) -> ApiError:
    """The HTTP error of a command refused for `reason` (a dead-letter reason)."""
    status = REJECTION_STATUS.get(reason, 422)
    headers = WWW_AUTHENTICATE if status == 401 else None
    return ApiError(status, reason, message, {"reason": reason}, headers=headers)


def check(command: Command, principal: Principal | None, limits: Limits) -> None:
    """Refuse, as `ApiError`, a command the worker would dead-letter on its own content."""
    key = Topology.command_key(command.agent_id, kind_of(command))
    body = command.model_dump_json(exclude_none=True).encode()
    try:
        prepare(key, body, principal.identity if principal else "", limits)
    except Rejected as exc:
        raise rejection(exc.reason, exc.detail or exc.reason) from None


async def send(
    gateway: CommandGateway | None,
    command: Command,
    principal: Principal | None,
    *,
    wait: bool,
) -> Outcome:
    """Publish `command` for `principal`; refuse (as `ApiError`) what the worker refused."""
    if gateway is None:
        raise ApiError(
            503,
            "writes-unavailable",
            "this API process has no broker gateway for writes",
            headers={"Retry-After": "1"},
        )
    try:
        outcome = await gateway.send(command, principal, wait=wait)
    except BrokerUnavailable as exc:
        raise ApiError(
            503,
            "broker-unavailable",
            f"the broker did not take the command; retry later ({exc})",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    if outcome.status == "rejected":
        reason = outcome.reason or "rejected"
        raise rejection(reason, outcome.message or f"the registry refused the command: {reason}")
    return outcome
