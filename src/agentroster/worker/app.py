"""Assemble the worker: FastStream broker, declared subscriber and publishers, background loops.

Built by `create_worker(settings)`; nothing connects until `start()`.

FastStream declares everything on the wire (the commands subscriber, handler-less, declares and
binds the quorum queue; the event and dead-letter publishers publish) and so documents it in
AsyncAPI. The commands themselves are consumed with aio-pika by `CommandConsumer`, straight into
`CommandBatcher.on_message`, without FastStream's per-message pipeline: `worker/consumer.py`
says why and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from faststream.rabbit import RabbitBroker
from faststream.rabbit.publisher import RabbitPublisher
from faststream.rabbit.subscriber import RabbitSubscriber
from pydantic import Field
from redis.asyncio import Redis

from agentroster.cancellation import cancel_and_wait
from agentroster.contracts import (
    EVENT_KINDS,
    AgentEvent,
    Deregister,
    EventKind,
    Heartbeat,
    Register,
    Topology,
)
from agentroster.contracts.gateway import REPLY_TO_PREFIX, CommandReply
from agentroster.contracts.ids import broker_user
from agentroster.registry.prepare import Prepared
from agentroster.settings import Settings
from agentroster.store.outbox import Outbox
from agentroster.store.redis_store import Quotas, RedisStore
from agentroster.worker import amqp_decoding
from agentroster.worker.backlog import QueueDepth
from agentroster.worker.batcher import CommandBatcher
from agentroster.worker.card_check import CardVerifier
from agentroster.worker.card_fetch import CardFetcher, FetchPolicy
from agentroster.worker.consumer import CommandConsumer
from agentroster.worker.dead_letters import DeadLetters
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.net_guard import parse_networks
from agentroster.worker.reaper import Reaper
from agentroster.worker.relay import OutboxRelay
from agentroster.worker.signature_check import SignatureChecker, SignatureVerifier
from agentroster.worker.signature_keys import KeySource, load_jwks
from agentroster.worker.topology import RabbitTopology, rabbit_topology

log = logging.getLogger(__name__)

#: A Redis call without an answer for this long fails and is retried (a hung connection must
#: not stall the worker forever); re-applying a batch that did commit is a no-op (seq dedup).
REDIS_SOCKET_TIMEOUT_S = 10.0

CommandPayload = Annotated[Register | Heartbeat | Deregister, Field(description="A command.")]


class Worker:
    """One worker replica: consumes commands, expires leases, relays events."""

    def __init__(self, settings: Settings, *, redis: Redis | None = None) -> None:
        self.settings = settings
        self.names = Topology(settings.prefix)
        self.rabbit: RabbitTopology = rabbit_topology(
            self.names,
            delivery_limit=settings.delivery_limit,
            event_log_max_age=settings.event_log_max_age,
            commands_max_length=settings.commands_max_length,
            dead_letter_max_length=settings.dead_letter_max_length,
        )
        self.metrics = WorkerMetrics()
        self.redis = redis or Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S / 2,
        )
        self.store = RedisStore(
            self.redis,
            settings.prefix,
            retention_ms=round(settings.retention_s * 1000),
            flap_window_ms=round(settings.flap_window_s * 1000),
            flap_max_events=settings.flap_max_events,
            quotas=Quotas(settings.max_agents_per_identity, settings.max_instances_per_agent),
        )
        self.broker = RabbitBroker(
            settings.broker_url,
            logger=logging.getLogger("agentroster.broker"),
            description="agentroster registry worker",
            on_close=[self._on_broker_close],
        )
        # handler-less: FastStream declares, binds and documents; CommandConsumer consumes
        self.subscriber: RabbitSubscriber = self.broker.subscriber(
            self.rabbit.commands_queue,
            self.rabbit.commands_exchange,
            title=f"{self.names.commands_queue}:consume",
            description="Commands from agents: register, heartbeat, deregister.",
        )
        self.event_publishers: dict[EventKind, RabbitPublisher] = {
            kind: self.broker.publisher(
                exchange=self.rabbit.events_exchange,
                routing_key=self.names.event_key(kind, "{agent_id}"),
                persist=True,
                title=f"{self.names.events_exchange}:agent.{kind}",
                description=f"agent.{kind}: CloudEvents binary mode, data is AgentEvent.",
                schema=AgentEvent,
            )
            for kind in EVENT_KINDS
        }
        self.dead_letter_publisher = self.broker.publisher(
            exchange=self.rabbit.dead_letter_exchange,
            persist=True,
            title=f"{self.names.dead_letter_exchange}:publish",
            description="Rejected commands, body unchanged, reason in x-agentroster-reason.",
            schema=CommandPayload,
        )
        # the default exchange, to the gateway's direct reply-to name (never persisted: a
        # reply outlives neither the gateway's channel nor its wait)
        self.reply_publisher = self.broker.publisher(
            routing_key=REPLY_TO_PREFIX + "{token}",
            mandatory=False,
            persist=False,
            title="amq.rabbitmq.reply-to:reply",
            description="The outcome of a gateway command that asked for one (HTTP writes "
            "with ?wait=true): published to the default exchange with the command's "
            "`reply_to` (only a direct reply-to name, `amq.rabbitmq.reply-to.*`, and only for "
            "a gateway user's command) as routing key and its `correlation_id`.",
            schema=CommandReply,
        )
        limits = settings.limits()
        self.verifier = CardVerifier(
            self.store,
            CardFetcher(
                FetchPolicy(
                    allowed=parse_networks(settings.verify_networks),
                    timeout_s=settings.verify_timeout_s,
                    max_bytes=settings.max_card_bytes,
                )
            ),
            self.metrics,
            mode=settings.verify_cards,
        )
        self.signatures = SignatureVerifier(
            self.store,
            SignatureChecker(
                KeySource(
                    load_jwks(settings.signature_jwks),
                    CardFetcher(
                        FetchPolicy(
                            allowed=parse_networks(settings.verify_networks),
                            timeout_s=settings.verify_timeout_s,
                            max_bytes=settings.signature_jwks_max_bytes,
                            max_redirects=0,
                        )
                    )
                    if settings.signature_jku
                    else None,
                    cache_s=settings.signature_jwks_cache_s,
                )
            ),
            self.metrics,
        )
        self.batcher = CommandBatcher(
            self.store,
            DeadLetters(self.dead_letter_publisher, self.metrics),
            self.metrics,
            limits=limits,
            exchange=self.names.commands_exchange,
            batch_max=settings.batch_max,
            batch_max_bytes=settings.batch_max_bytes,
            linger_s=settings.batch_linger_ms / 1000,
            on_registered=self._registered,
            replier=self._reply,
        )
        self.consumer = CommandConsumer(
            settings.broker_url,
            self.names.commands_queue,
            self.batcher.on_message,
            prefetch=settings.prefetch,
            on_connection_lost=self._on_consumer_lost,
        )
        self.backlog = QueueDepth(settings.broker_url, self.names.commands_queue)
        self.reaper = Reaper(
            self.store,
            self.metrics,
            interval_s=settings.sweep_interval_s,
            gap_s=settings.reaper_gap_s,
            brake_share=settings.brake_share,
            brake_min_agents=settings.brake_min_agents,
            hold_reason=self.reaper_hold_reason,
        )
        self.relay = OutboxRelay(
            Outbox(self.redis, settings.prefix),
            self.event_publishers,
            self.metrics,
            topology=self.names,
            source=settings.event_source,
            user_id=broker_user(settings.broker_url),
            lock_ttl_s=settings.relay_lock_ttl_s,
            window=settings.events_window,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Connect, declare the topology, and start consuming, sweeping and relaying."""
        # before the first frame: one undecodable message must not drop the connection
        amqp_decoding.install()
        self._stopping = False
        await self.store.observe()  # the epoch, before any write, to notice a data loss
        await self.broker.connect()
        await self.declare_topology()
        await self.broker.start()  # declares and binds the commands queue
        self._tasks = [
            asyncio.create_task(self.batcher.run(), name="agentroster-batcher"),
            asyncio.create_task(self.relay.run(), name="agentroster-relay"),
        ]
        self.verifier.start()
        self.signatures.start()
        await self.consumer.start()
        # after the consumer: the reaper holds while the commands connection is down
        self._tasks.append(asyncio.create_task(self.reaper.run(), name="agentroster-reaper"))
        log.info("worker started: consuming %s", self.names.commands_queue)

    def _registered(self, command: Prepared) -> None:
        """An applied registration: offer it to the card and signature checks (no I/O)."""
        self.verifier.offer(command)
        self.signatures.offer(command)

    async def _reply(self, reply_to: str, correlation_id: str | None, reply: CommandReply) -> None:
        """Publish one gateway reply (see `reply_publisher`)."""
        await self.reply_publisher.publish(
            reply.model_dump_json().encode(),
            routing_key=reply_to,
            correlation_id=correlation_id,
            content_type="application/json",
        )

    async def reaper_hold_reason(self) -> str | None:
        """Why leases must not expire now: renewals may be unheard (invariant 3)."""
        if not self.consumer.connected():
            return "the worker's broker connection for commands is down"
        if not await self.broker.ping(timeout=0.05):
            return "the worker's broker connection is down"
        ready = await self.backlog.ready()
        if ready is not None:
            self.metrics.commands_backlog.set(ready)
        if ready is not None and ready > self.settings.reaper_backlog_limit:
            return f"{ready} commands wait in {self.names.commands_queue}"
        return None

    async def declare_topology(self) -> None:
        """Declare what no subscriber declares: dead-letter queue, events exchange and log."""
        rabbit = self.rabbit
        dlx = await self.broker.declare_exchange(rabbit.dead_letter_exchange)
        dlq = await self.broker.declare_queue(rabbit.dead_letter_queue)
        await dlq.bind(dlx, routing_key="")
        events = await self.broker.declare_exchange(rabbit.events_exchange)
        log_queue = await self.broker.declare_queue(rabbit.events_log)
        await log_queue.bind(events, routing_key=self.names.events_log_binding)
        await self.broker.declare_exchange(rabbit.commands_exchange)

    def _on_broker_close(self, _connection: object, error: BaseException | None) -> None:
        """Count a broker connection lost while running (not our own shutdown)."""
        if not self._stopping:
            self.metrics.broker_connection_lost.inc()
            log.warning("the broker connection closed (%s); reconnecting", error)

    def _on_consumer_lost(self, error: BaseException | None) -> None:
        """Count the commands connection lost while running (not our own shutdown)."""
        self._on_broker_close(None, error)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop consuming, settle what was taken, give up the relay lock, disconnect."""
        self._stopping = True
        await self.consumer.stop_consuming()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.batcher.drained(), timeout_s)
        for task in await cancel_and_wait(self._tasks, timeout_s):
            log.error("%s did not stop within %.0fs; leaving it", task.get_name(), timeout_s)
        self._tasks = []
        await self.verifier.stop(timeout_s)  # checks not done yet are lost (card_check.py)
        await self.signatures.stop(timeout_s)  # the same (signature_check.py)
        await self.consumer.close()
        await self.broker.stop()
        await self.backlog.close()
        await self.redis.aclose()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def create_worker(settings: Settings, *, redis: Redis | None = None) -> Worker:
    """Build a worker from settings (nothing connects until `start()`)."""
    return Worker(settings, redis=redis)
