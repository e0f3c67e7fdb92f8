// Parse captured events with the TypeScript models Modelina generated (interfaces).
// Usage: node check.js EVENTS_JSON. Each event is {"headers", "body", "revision", "status"}: the
// body as it came off the wire, its revision in decimal and its status, read by the test from
// the JSON.
import { readFileSync } from 'node:fs';
import type { AgentEvent } from './generated/AgentEvent';
import type { CloudEventsHeaders } from './generated/CloudEventsHeaders';

interface Captured {
  headers: CloudEventsHeaders;
  body: string;
  revision: string;
  status: AgentEvent['status'];
}

function fail(n: number, message: string): never {
  console.error(`event ${n}: ${message}`);
  process.exit(1);
}

const captured = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as Captured[];
captured.forEach((item, n) => {
  const event = JSON.parse(item.body) as AgentEvent;
  const expected = BigInt(item.revision);
  // a JSON number is exact in JavaScript up to 2^53; a revision in ms is far below that
  if (!Number.isSafeInteger(event.revision) || BigInt(event.revision) !== expected) {
    fail(n, `revision ${event.revision}, the JSON says ${expected}`);
  }
  if (BigInt(item.headers.cloudEvents_revision) !== expected) {
    fail(n, `cloudEvents_revision ${item.headers.cloudEvents_revision} != ${expected}`);
  }
  if (event.status !== item.status) {
    fail(n, `status ${event.status}, the JSON says ${item.status}`);
  }
  if (item.headers.cloudEvents_subject !== event.agent_id) {
    fail(n, `subject ${item.headers.cloudEvents_subject} != ${event.agent_id}`);
  }
});
console.log(`typescript: parsed ${captured.length} events`);
