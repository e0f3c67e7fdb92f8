"""The hot path: commands in, one Redis script per batch, acknowledgements out.

aio-pika hands each delivery to `on_message`, which validates it (no I/O) and queues it. One
flusher task takes everything queued (up to `batch_max`), applies it with one script call, parks
the rejects in the dead-letter queue, and then acknowledges the whole batch with a single
`basic.ack(multiple=True)`. Under load, batches fill while the previous one commits, and a
partial batch waits `linger_s` to fill; when idle, a command is applied alone at once. A batch
also ends once its commands' cost (`Prepared.cost`: bytes stored, plus a share per index term)
reaches `batch_max_bytes` (always at least one command), so one script call of the costliest
registrations the limits allow stays short (bench/README.md, Limits).

A command is acknowledged only after its batch committed (invariant 1). The multiple-ack is
safe because aiormq runs `on_message` for deliveries in order and it appends before any await,
so `_pending` is in delivery-tag order and batches settle in that order: a multiple-ack never
covers a message that is still pending.

Tracing (`agentroster.tracing`, README: Tracing): with it on, each command is a CONSUMER span
of its own, a child of the context it was published with, from its delivery until its batch
is settled. A batch mixes many agents' commands, so one span per batch (with a link per
command) would leave every agent's trace without its apply, and few backends follow links;
the batch shows as `messaging.batch.message_count` on each span. The span's context goes into
the command's record for the command's events (`Prepared.trace`); with tracing off, the
context the command came with goes there instead, if it is well-formed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aio_pika.abc import AbstractIncomingMessage
from redis.exceptions import ResponseError

from agentroster import tracing
from agentroster.cancellation import raise_if_cancelling
from agentroster.contracts.gateway import (
    HEARTBEAT_BATCH_KEY,
    PRINCIPAL_HEADER,
    REPLY_TO_PREFIX,
    CommandReply,
)
from agentroster.registry.batch import BatchPart, split_batch
from agentroster.registry.prepare import Limits, Prepared, Rejected, prepare, speaker
from agentroster.store.redis_store import (
    AGENT_QUOTA,
    APPLIED,
    FORBIDDEN,
    INSTANCE_QUOTA,
    OUTCOMES,
    STUCK,
    UNKNOWN_AGENT,
    Quotas,
    RedisStore,
)
from agentroster.worker.amqp_decoding import UNDECODABLE_HEADER, is_undecodable, printable
from agentroster.worker.dead_letters import DeadLetters
from agentroster.worker.loops import REDIS_UNAVAILABLE, report_flapping
from agentroster.worker.metrics import WorkerMetrics

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)


#: Sends a gateway's reply: (reply_to, correlation_id, reply).
Replier = Callable[[str, str | None, CommandReply], Awaitable[None]]


@dataclass(slots=True)
class _Item:
    message: AbstractIncomingMessage
    command: Prepared | None
    rejected: Rejected | None
    requeue: bool = False
    #: Where the gateway wants the outcome (direct reply-to), for a gateway user's command.
    reply_to: str | None = None
    code: int | None = None
    #: Its CONSUMER span, with tracing on (ended once its batch is settled).
    span: Span | None = None
    #: One heartbeat of a gateway's batch (`registry.batch`): what its dead letter carries.
    part: BatchPart | None = None
    #: The last item of its message: only this one settles the delivery.
    last: bool = True


class CommandBatcher:
    """Applies commands from the queue in batches; see the module docstring."""

    def __init__(
        self,
        store: RedisStore,
        dead_letters: DeadLetters,
        metrics: WorkerMetrics,
        *,
        limits: Limits,
        exchange: str,
        batch_max: int = 500,
        batch_max_bytes: int = 1024 * 1024,
        linger_s: float = 0.005,
        on_registered: Callable[[Prepared], None] | None = None,
        replier: Replier | None = None,
    ) -> None:
        self._store = store
        #: told of each registration applied, after its batch committed (must not wait)
        self._on_registered = on_registered
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._limits = limits
        self._exchange = exchange
        self._batch_max = batch_max
        self._batch_max_bytes = batch_max_bytes
        self._linger_s = linger_s
        self._replier = replier
        self._pending: list[_Item] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: decided once: off, a command costs one look into its headers (`_traced`)
        self._tracing = tracing.enabled()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika consumer callback: validate and queue; the flusher does the rest."""
        reply_to = None
        span = None
        try:
            if self._tracing:
                span = tracing.start_processing(
                    self._exchange, message.routing_key or "", message.headers, message.message_id
                )
            problem = undecodable(message)
            if problem is not None:
                raise Rejected("undecodable", problem)
            if message.exchange != self._exchange:
                # only the commands exchange carries the broker's topic permissions: a queue
                # bound elsewhere, or the default exchange, must not be a way around them
                raise Rejected(
                    "wrong-exchange",
                    f"commands are taken only from the exchange {self._exchange!r}, "
                    f"not {message.exchange!r}",
                )
            if message.routing_key == HEARTBEAT_BATCH_KEY:
                self._queue_batch(message, span)
                return
            user = message.user_id
            headers = message.headers
            principal = headers.get(PRINCIPAL_HEADER) if headers else None
            if message.reply_to and user in self._limits.gateway_users:
                # only a gateway is answered, and only on direct reply-to: a reply can never
                # be made to land in some queue of the publisher's choosing
                reply_to = _direct_reply_to(message.reply_to)
            identity = speaker(user, principal, self._limits)
            command = prepare(message.routing_key or "", message.body, identity, self._limits)
            trace = _traced(message, span)
            if trace:
                command = replace(command, trace=trace)
            item = _Item(message, command, None, reply_to=reply_to, span=span)
        except Rejected as rejected:
            item = _Item(message, None, rejected, reply_to=reply_to, span=span)
        except Exception as exc:  # a bug of ours must not leave the delivery unsettled
            log.exception("could not validate a command")
            item = _Item(message, None, Rejected("internal-error", repr(exc)), span=span)
        self._pending.append(item)
        self._idle.clear()
        self._wakeup.set()

    def _queue_batch(self, message: AbstractIncomingMessage, span: Span | None) -> None:
        """Queue each heartbeat of a gateway's batch as an item of its own, in order; the
        delivery is settled with its last item (they are never split across flushes)."""
        parts = split_batch(message.body, message.user_id, self._limits)  # Rejected: all of it
        last = len(parts) - 1
        for n, part in enumerate(parts):
            self._pending.append(
                _Item(
                    message,
                    part.prepared,
                    part.rejected,
                    span=span if n == last else None,
                    part=part,
                    last=n == last,
                )
            )
        self._idle.clear()
        self._wakeup.set()

    async def run(self) -> None:
        """Flush queued commands until cancelled."""
        while True:
            raise_if_cancelling()
            await self._wakeup.wait()
            self._wakeup.clear()
            last_size = 0
            while self._pending:
                if last_size > 1 and len(self._pending) < self._batch_max and self._linger_s:
                    # under load only (the last batch was not a lone command): let the batch
                    # fill a little; one Lua call per ~60 commands instead of ~12 costs less CPU
                    await asyncio.sleep(self._linger_s)
                size = self._batch_size()
                batch = self._pending[:size]
                del self._pending[:size]
                last_size = len(batch)
                try:
                    await self._flush(batch)
                except Exception:
                    log.exception(
                        "a batch of %d commands failed; returning it to the queue", len(batch)
                    )
                    await _settle_unsettled(batch)
                    _end_spans(batch, failed=True)
            self._idle.set()

    def _batch_size(self) -> int:
        pending = self._pending[: self._batch_max]
        size = batch_length(
            [item.command for item in pending], self._batch_max, self._batch_max_bytes
        )
        # a gateway's batch is one delivery: it is applied and settled in one flush
        while size < len(self._pending) and not self._pending[size - 1].last:
            size += 1
        return size

    async def drained(self) -> None:
        """Wait until every queued command is settled (used on graceful shutdown)."""
        await self._idle.wait()

    async def _flush(self, batch: list[_Item]) -> None:
        commands = [item for item in batch if item.command is not None]
        codes = await self._apply([i.command for i in commands if i.command]) if commands else []
        outcomes: Counter[tuple[str, str]] = Counter()
        for item, code in zip(commands, codes, strict=True):
            assert item.command is not None
            item.code = code
            if code is None:
                item.requeue = True  # failed in Redis itself: the delivery limit decides
            elif code in REJECTED_BY_STORE:
                item.rejected = rejection(code, item.command, self._store.quotas)
            elif code == STUCK:
                self._metrics.stuck_instances.inc()
                log.warning(
                    "instance %s/%s is stuck: its commands keep being ignored as duplicates "
                    "or late (its client's seq went backwards, or they are replayed); it "
                    "must start a new instance_id or count on from seq > the last applied",
                    item.command.agent_id,
                    item.command.instance_id,
                )
            elif code == UNKNOWN_AGENT:
                log.debug("heartbeat for unknown agent %s ignored", item.command.agent_id)
            if code is not None:
                outcomes[item.command.kind, OUTCOMES[code]] += 1
            if code == APPLIED and self._on_registered and item.command.kind == "register":
                self._on_registered(item.command)
        for (kind, outcome), count in outcomes.items():  # per batch: labels() is not free
            self._metrics.commands.labels(kind, outcome).inc(count)
        rejects = [item for item in batch if item.rejected is not None]
        if rejects:
            parked = await asyncio.gather(
                *(
                    self._dead_letters.park(i.message, i.rejected, i.part)
                    for i in rejects
                    if i.rejected
                ),
                return_exceptions=True,
            )
            for item, result in zip(rejects, parked, strict=True):
                if isinstance(result, BaseException):
                    log.warning("could not dead-letter a command (%s); requeueing it", result)
                    item.requeue = True
        # a delivery is requeued once, however many of its heartbeats failed (a batch's
        # applied ones come back as duplicates: ignored by their seq)
        requeued = {id(i.message): i.message for i in batch if i.requeue}
        for message in requeued.values():
            await message.nack(requeue=True)
        settled = [i for i in batch if id(i.message) not in requeued]
        await _ack_all(settled)
        if self._replier is not None:
            await self._reply([item for item in settled if item.reply_to])
        if self._tracing:
            _end_spans(batch)

    async def _reply(self, items: list[_Item]) -> None:
        """Tell the gateways that asked what became of their commands (best effort: a gateway
        that gave up waiting has answered 202 already)."""
        if not items:
            return
        assert self._replier is not None
        sends = []
        for item in items:
            assert item.reply_to is not None
            if item.rejected is not None:
                detail = item.rejected.detail[:1024]
                reply = CommandReply(
                    outcome="rejected", reason=item.rejected.reason, message=detail
                )
            else:
                reply = CommandReply(
                    outcome="applied", reason=OUTCOMES.get(item.code or 0, "applied")
                )
            sends.append(self._replier(item.reply_to, item.message.correlation_id, reply))
        for result in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(result, BaseException):
                log.debug("could not reply to a gateway: %s", result)

    async def _apply(self, commands: Sequence[Prepared]) -> list[int | None]:
        """One script call for the batch; Redis outages are waited out, never dropped."""
        delay = 0.1
        while True:
            raise_if_cancelling()
            try:
                result = await self._store.apply(commands)
            except REDIS_UNAVAILABLE as exc:
                raise_if_cancelling()
                self._metrics.redis_errors.inc()
                log.warning("Redis unavailable (%s); retrying the batch in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except ResponseError:
                if len(commands) == 1:
                    raise
                log.exception("a batch failed in Redis; applying its commands one by one")
                return [await self._apply_one(c) for c in commands]
            self._metrics.batches.inc()
            report_flapping(self._metrics, result.damped)
            return list(result.codes)

    async def _apply_one(self, command: Prepared) -> int | None:
        try:
            (code,) = await self._apply([command])
        except ResponseError:
            log.exception("command for %s failed in Redis", command.agent_id)
            return None
        return code


#: Codes for which the store changed nothing and the command is dead-lettered.
REJECTED_BY_STORE = frozenset({FORBIDDEN, AGENT_QUOTA, INSTANCE_QUOTA})


def rejection(code: int, command: Prepared, quotas: Quotas) -> Rejected:
    """Why the store refused a command (one of `REJECTED_BY_STORE`), in words."""
    identity = f"identity {command.user_id!r}" if command.user_id else "no identity"
    if code == FORBIDDEN:
        return Rejected(
            "forbidden", f"agent {command.agent_id!r} is owned by another identity than {identity}"
        )
    if code == AGENT_QUOTA:
        return Rejected(
            "quota-exceeded",
            f"{identity} already owns {quotas.agents_per_identity} agents "
            "(AGENTROSTER_MAX_AGENTS_PER_IDENTITY)",
        )
    return Rejected(
        "quota-exceeded",
        f"agent {command.agent_id!r} already has {quotas.instances_per_agent} live instances "
        "(AGENTROSTER_MAX_INSTANCES_PER_AGENT)",
    )


def _direct_reply_to(reply_to: str) -> str | None:
    """`reply_to` if it names a direct reply-to channel (and is printable), else None."""
    if reply_to.startswith(REPLY_TO_PREFIX) and not is_undecodable(reply_to):
        return reply_to
    return None


def undecodable(message: AbstractIncomingMessage) -> str | None:
    """What of a delivery was not valid AMQP text (see `amqp_decoding`), or None."""
    headers = message.headers
    if headers and UNDECODABLE_HEADER in headers:
        problem = headers[UNDECODABLE_HEADER]
        return printable(problem) if isinstance(problem, str) else repr(problem)
    routing_key = message.routing_key or ""
    if is_undecodable(routing_key):
        return f"routing key not UTF-8: '{printable(routing_key)}'"
    return None


def batch_length(commands: Sequence[Prepared | None], batch_max: int, batch_max_bytes: int) -> int:
    """How many of `commands` (None: a rejected one) the next batch takes: up to `batch_max`,
    and none more once their cost (`Prepared.cost`) reaches `batch_max_bytes`; at least one."""
    total = 0
    for n, command in enumerate(commands[:batch_max]):
        if command is not None and command.kind == "register":  # the rest store nothing
            total += command.cost()
            if total >= batch_max_bytes:
                return n + 1
    return min(len(commands), batch_max)


def _traced(message: AbstractIncomingMessage, span: Span | None) -> str:
    """The trace context a command's events carry (`tracing.pack`): its CONSUMER span's with
    tracing on; off, the one it came with (checked), so a subscriber still joins the agent's
    trace; '' for none."""
    if span is not None:
        return tracing.pack(tracing.span_headers(span))
    headers = message.headers
    if not headers:  # an agent that does not trace: nothing to look at
        return ""
    return tracing.pack(tracing.trace_headers(headers))


def _end_spans(batch: list[_Item], *, failed: bool = False) -> None:
    """End the batch's CONSUMER spans with what became of each command."""
    size = len(batch)
    for item in batch:
        span = item.span
        if span is None:
            continue
        span.set_attribute("messaging.batch.message_count", size)
        if failed or item.requeue:
            span.set_attribute("agentroster.outcome", "requeued")
        elif item.rejected is not None:
            span.set_attribute("agentroster.outcome", f"rejected:{item.rejected.reason}")
        elif item.code is not None:
            span.set_attribute("agentroster.outcome", OUTCOMES.get(item.code, str(item.code)))
        span.end()


async def _settle_unsettled(batch: list[_Item]) -> None:
    """Return a failed batch to the queue; a closed channel returns it by itself."""
    for message in {id(item.message): item.message for item in batch}.values():
        try:
            await message.nack(requeue=True)
        except Exception as exc:  # already settled, or the channel is gone
            log.debug("could not requeue a command: %s", exc)


async def _ack_all(batch: list[_Item]) -> None:
    """Acknowledge a batch with one multiple-ack per channel (a reconnect starts a new one)."""
    last_per_channel: dict[int, AbstractIncomingMessage] = {}
    for item in batch:
        if not item.requeue and item.last:
            last_per_channel[id(item.message.channel)] = item.message
    for message in last_per_channel.values():
        try:
            await message.ack(multiple=True)
        except Exception as exc:  # the channel closed: the broker redelivers, seq dedups
            log.warning("could not acknowledge a batch (%s); it will be redelivered", exc)
