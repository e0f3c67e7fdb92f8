// Generate src/generated/*.ts from the agent's AsyncAPI document: the message types (Modelina),
// and amqp.ts, where each operation is published or received (exchange, routing key, AMQP type).
// Usage: node scripts/generate.mjs [document] (default ../../asyncapi/agent.yaml)
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { TypeScriptFileGenerator } from '@asyncapi/modelina';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = resolve(process.argv[2] ?? resolve(root, '../../asyncapi/agent.yaml'));
const out = resolve(root, 'src/generated');

function fail(message) {
  console.error(`${source}: ${message}`);
  process.exit(1);
}

const { document, diagnostics } = await new Parser().parse(await readFile(source, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (!document || errors.length > 0) {
  for (const e of errors) console.error(`${source}: ${e.path.join('/')}: ${e.message}`);
  process.exit(1);
}

// The AMQP side of every operation. The document's exchange names begin with the prefix it was
// written for (`info.x-agentroster-prefix`); src/agent.ts puts its registry's prefix in place.
const prefix = document.info().extensions().get('x-agentroster-prefix')?.value();
if (typeof prefix !== 'string' || prefix === '') fail('no info.x-agentroster-prefix');
const operations = {};
for (const operation of document.operations().all()) {
  const [channel] = operation.channels().all();
  const [message] = operation.messages().all();
  const amqp = channel?.bindings().get('amqp')?.value() ?? {};
  const { name, type, durable, autoDelete } = amqp.exchange ?? {};
  if (!name?.startsWith(`${prefix}.`)) {
    fail(`operation ${operation.id()}: exchange ${name} does not begin with ${prefix}.`);
  }
  const queue = amqp['x-queue']; // a receiving channel: the subscriber's own queue
  const { bindingVersion: _, ...binding } = operation.bindings().get('amqp')?.value() ?? {};
  operations[operation.id()] = {
    action: operation.action(),
    exchange: { name, type, durable, autoDelete },
    address: channel.address(), // the routing key; `{agent_id}` is its parameter
    ...(queue && {
      queue: { durable: queue.durable, exclusive: queue.exclusive, autoDelete: queue.autoDelete },
    }),
    messageType: message?.bindings().get('amqp')?.value()?.messageType, // the AMQP `type`
    ...binding, // deliveryMode, mandatory, timestamp, ack
  };
}

const generator = new TypeScriptFileGenerator({
  modelType: 'interface', // the wire is plain JSON: JSON.parse / JSON.stringify, no classes
  enumType: 'union',
  mapType: 'record',
  rawPropertyNames: true, // keep `agent_id`, not `agentId`: these are the field names on the wire
  moduleSystem: 'ESM',
  // a schema without `additionalProperties: false` would gain a field named `additionalProperties`
  processorOptions: { interpreter: { ignoreAdditionalProperties: true } },
});

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
// Modelina models the messages' payloads; their headers (the events' CloudEvents attributes)
// are generated from each message's headers schema.
const models = await generator.generateToFiles(document, out, { exportType: 'named' }, true);
const headers = new Set(document.allMessages().map((m) => m.headers()?.json()).filter(Boolean));
for (const schema of headers) {
  models.push(...(await generator.generateToFiles(schema, out, { exportType: 'named' }, true)));
}

const names = [...new Set(models.map((m) => m.modelName))].sort();
const index = names.map((name) => `export type { ${name} } from './${name}';`).join('\n');
const banner = `// Generated from ${relative(root, source)} by scripts/generate.mjs.`;
await writeFile(resolve(out, 'index.ts'), `${banner}\n${index}\n`);
const amqp = [
  banner,
  '/** The prefix the exchange names below begin with (`info.x-agentroster-prefix`). */',
  `export const PREFIX = ${JSON.stringify(prefix)};`,
  '/** Every operation of the document, by id: where it publishes or receives, and how. */',
  `export const operations = ${JSON.stringify(operations, null, 2)} as const;`,
];
await writeFile(resolve(out, 'amqp.ts'), `${amqp.join('\n')}\n`);
console.error(`generated ${names.join(', ')} and amqp.ts (PREFIX, operations) in src/generated/`);
