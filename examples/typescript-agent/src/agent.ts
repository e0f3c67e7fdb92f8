// An agentroster agent in TypeScript: register, heartbeat, follow the registry's events,
// deregister on SIGTERM/SIGINT. The message types, and where each message is published or
// received (exchange, routing key, AMQP type), come from asyncapi/agent.yaml (src/generated,
// written by `npm run generate`); the amqplib glue below only puts its registry's prefix in.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  connect,
  type Message,
} from 'amqplib';
import type {
  AgentEvent,
  CloudEventsHeaders,
  Deregister,
  Heartbeat,
  Register,
} from './generated/index.js';
import { operations, PREFIX } from './generated/amqp.js';

type CommandKind = 'register' | 'heartbeat' | 'deregister'; // the ids of send operations
type Exchange = { name: string; type: string; durable: boolean; autoDelete: boolean };

const env = process.env;
const brokerUrl = env.AGENTROSTER_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';
// Every command carries the connection's user name as AMQP `user_id`: RabbitMQ refuses any
// other, so the registry knows who sent it (and binds the agent to that user). amqplib logs in
// as guest when the URL names no user.
const brokerUser = decodeURIComponent(new URL(brokerUrl).username) || 'guest';
const prefix = env.AGENTROSTER_PREFIX ?? PREFIX;
const intervalS = Number(env.AGENT_INTERVAL_S ?? '10');
const ttlS = Number(env.AGENT_TTL_S ?? 3 * intervalS);
// Every beat that completes a TTL re-sends the full registration (every 3rd with the default
// TTL), as the Python Beacon does: after Redis lost its data, the registry's recovery window
// (2 TTLs) sees every live agent register again.
const FULL_EVERY = Math.max(1, Math.floor(ttlS / intervalS));

// An A2A v1.0 card, as the agent would serve it.
const card = {
  name: env.AGENT_NAME ?? 'TypeScript Echo',
  description: 'Echoes what it is sent.',
  version: '1.0.0',
  supportedInterfaces: [
    { url: 'http://127.0.0.1:8081/a2a', protocolBinding: 'JSONRPC', protocolVersion: '1.0' },
  ],
  capabilities: { streaming: false },
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [{ id: 'echo', name: 'Echo', description: 'Repeats the input.', tags: ['echo', 'test'] }],
};
const agentId = env.AGENT_ID ?? deriveAgentId(card.name);
const instanceId = newInstanceId();
const digest = cardDigest(card);

/** `"Weather Bot"` -> `weather-bot`, as the Python client derives an agent id. */
function deriveAgentId(name: string): string {
  const ascii = name.normalize('NFKD').replace(/[^\x00-\x7f]/g, '').toLowerCase();
  return ascii.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
}

/** Unique per process lifetime: host (or pod) name plus a random suffix, as in Python. */
function newInstanceId(): string {
  const host = (env.HOSTNAME || hostname() || 'host').replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 100);
  return `${host}-${randomBytes(4).toString('hex')}`;
}

/** A name of the document for this registry: `agentroster.events` -> `<prefix>.events`. */
function named(name: string): string {
  return prefix + name.slice(PREFIX.length); // the generator checked it begins with `${PREFIX}.`
}

/** A channel's address with its `{agent_id}` filled in (`*` in a binding: every agent). */
function address(template: string, agentId: string): string {
  return template.replaceAll('{agent_id}', agentId);
}

/**
 * `Heartbeat.card_digest` as asyncapi/agent.yaml describes it: `sha256:` and the hex SHA-256 of
 * the card as compact UTF-8 JSON, the keys of every object sorted by Unicode code point (UTF-8
 * byte order; JavaScript's `<` compares UTF-16 units). The API serves it as the card's ETag.
 */
function cardDigest(value: unknown): string {
  const byCodePoint = (a: string, b: string): number =>
    Buffer.compare(Buffer.from(a), Buffer.from(b));
  const canonical = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v).sort(([a], [b]) => byCodePoint(a, b));
      return `{${entries.map(([k, item]) => `${JSON.stringify(k)}:${canonical(item)}`).join(',')}}`;
    }
    return JSON.stringify(v);
  };
  return `sha256:${createHash('sha256').update(canonical(value)).digest('hex')}`;
}

/** One JSON line on stdout (what a test or a pipe reads); logs go to stderr. */
function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// The channels of the current connection: `setup` opens them after every (re)connect.
let commands: ConfirmChannel | undefined;
const commandKinds: CommandKind[] = ['register', 'heartbeat', 'deregister'];
const events = [operations.agentJoined, operations.agentUpdated, operations.agentLeft];
// With `mandatory`, an unroutable command comes back (basic.return) before its confirm.
const returned = new Set<string>();

/**
 * Look one of the document's exchanges up under this registry's prefix, never declare it: the
 * registry declares its exchanges, and an agent needs no *configure* permission. A missing one
 * (no registry with this prefix started yet) fails with NOT_FOUND.
 */
async function checkExchange(channel: Channel, exchange: Exchange): Promise<string> {
  const name = named(exchange.name);
  await channel.checkExchange(name);
  return name;
}

async function setup(model: ChannelModel): Promise<void> {
  // Subscribe before registering, so the agent.joined of our own registration is not missed.
  const receiver = await model.createChannel();
  receiver.on('error', (err: Error) => console.error(`events channel: ${err.message}`));
  // one server-named queue of its own (the document's `x-queue`) for every event of any agent
  const { queue } = await receiver.assertQueue('', operations.agentJoined.queue);
  for (const event of events) {
    const exchange = await checkExchange(receiver, event.exchange);
    await receiver.bindQueue(queue, exchange, address(event.address, '*'));
  }
  // delivery is at least once: a re-published event keeps its cloudEvents_id, so drop repeats
  // (the ids of the last 10,000 events are enough: repeats follow their original closely)
  const seen = new Set<string>();
  await receiver.consume(queue, (message: ConsumeMessage | null) => {
    if (message === null) return; // the server cancelled the consumer
    const headers = message.properties.headers as CloudEventsHeaders;
    if (seen.has(headers.cloudEvents_id)) {
      receiver.ack(message);
      return;
    }
    seen.add(headers.cloudEvents_id);
    if (seen.size > 10_000) {
      const oldest = seen.values().next();
      if (!oldest.done) seen.delete(oldest.value);
    }
    const data = JSON.parse(message.content.toString('utf8')) as AgentEvent;
    emit({
      event: message.properties.type, // agent.joined | agent.updated | agent.left
      id: headers.cloudEvents_id,
      agent_id: data.agent_id,
      revision: data.revision,
      status: data.status,
      reason: data.reason,
      live_instances: data.live_instances,
    });
    receiver.ack(message);
  });

  const channel = await model.createConfirmChannel();
  channel.on('error', (err: Error) => console.error(`commands channel: ${err.message}`));
  channel.on('return', (message: Message) => returned.add(message.properties.messageId));
  for (const kind of commandKinds) await checkExchange(channel, operations[kind].exchange);
  commands = channel;
}

// Fails at once if the broker is down at start; afterwards reconnects (and re-runs `setup`).
const connection = await connect(brokerUrl, {
  clientProperties: { connection_name: `agentroster-ts-agent ${agentId}` },
  recovery: { initialMaxRetries: 0, maxDelay: 5000, setup },
});
connection.on('error', (err: Error) => console.error(`connection error: ${err.message}`));
connection.on('disconnect', (err: Error) => {
  commands = undefined;
  console.error(`disconnected (${err.message}); reconnecting`);
});

let seq = 0;

/** Publish one command and wait for the broker's confirm; rejects if it was not routed. */
function publish(kind: CommandKind, command: Register | Heartbeat | Deregister): Promise<void> {
  const operation = operations[kind];
  const routingKey = address(operation.address, command.agent_id);
  const messageId = randomUUID().replaceAll('-', '');
  const channel = commands;
  if (channel === undefined) return Promise.reject(new Error('not connected'));
  return new Promise((resolve, reject) => {
    channel.publish(
      named(operation.exchange.name),
      routingKey,
      Buffer.from(JSON.stringify(command)),
      {
        contentType: 'application/json',
        type: operation.messageType,
        messageId,
        timestamp: Math.floor(Date.now() / 1000), // AMQP timestamps are whole seconds
        persistent: operation.deliveryMode === 2,
        userId: brokerUser,
        mandatory: operation.mandatory,
      },
      (err: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(`${kind} was not confirmed`));
        else if (returned.delete(messageId)) reject(new Error(`nothing routes ${routingKey}`));
        else resolve();
      },
    );
  });
}

function register(): Promise<void> {
  const command: Register = {
    agent_id: agentId,
    instance_id: instanceId,
    seq: ++seq,
    sent_at: new Date().toISOString(),
    ttl_s: ttlS,
    interval_s: intervalS,
    card,
    labels: { language: 'typescript' },
  };
  return publish('register', command);
}

function heartbeat(): Promise<void> {
  const command: Heartbeat = {
    agent_id: agentId,
    instance_id: instanceId,
    seq: ++seq,
    sent_at: new Date().toISOString(),
    ttl_s: ttlS,
    card_digest: digest,
  };
  return publish('heartbeat', command);
}

function deregister(reason: string): Promise<void> {
  const command: Deregister = {
    agent_id: agentId,
    instance_id: instanceId,
    seq: ++seq,
    sent_at: new Date().toISOString(),
    reason,
  };
  return publish('deregister', command);
}

await register();
emit({ action: 'registered', agent_id: agentId, instance_id: instanceId, card_digest: digest });

// Heartbeats, jittered by +-10%; every FULL_EVERY-th beat, and the next beat after a failure,
// re-sends the full registration instead.
let beats = 0;
let failed = false;
let timer: NodeJS.Timeout | undefined;
function scheduleBeat(): void {
  timer = setTimeout(async () => {
    beats += 1;
    try {
      await (failed || beats % FULL_EVERY === 0 ? register() : heartbeat());
      failed = false;
    } catch (err) {
      failed = true;
      console.error(`heartbeat of ${agentId} failed: ${(err as Error).message}; retrying`);
    }
    if (timer !== undefined) scheduleBeat(); // undefined: shutting down
  }, intervalS * 1000 * (0.9 + Math.random() * 0.2));
}
scheduleBeat();

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  clearTimeout(timer);
  timer = undefined;
  try {
    await deregister(signal.toLowerCase());
    emit({ action: 'deregistered', agent_id: agentId, instance_id: instanceId });
  } catch (err) {
    console.error(`could not deregister ${agentId}/${instanceId}: ${(err as Error).message}`);
    process.exitCode = 1;
  }
  await connection.close();
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
