// Generate models of an AsyncAPI document with Modelina, once per language, into OUT/<language>/
// (Python: OUT/python/asyncapimodels/, the package its imports name): the messages' payloads and
// their headers (the events' CloudEvents attributes).
// Usage: node generate.mjs DOCUMENT OUT
import { mkdir, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import {
  GO_COMMON_PRESET,
  GoFileGenerator,
  JAVA_JACKSON_PRESET,
  JavaFileGenerator,
  PYTHON_PYDANTIC_PRESET,
  PythonFileGenerator,
  TypeScriptFileGenerator,
} from '@asyncapi/modelina';

const [source, outArg] = process.argv.slice(2);
if (!source || !outArg) {
  console.error('usage: node generate.mjs DOCUMENT OUT');
  process.exit(2);
}
const out = resolve(outArg);
const { document, diagnostics } = await new Parser().parse(await readFile(source, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (!document || errors.length > 0) {
  for (const e of errors) console.error(`${source}: ${e.path.join('/')}: ${e.message}`);
  process.exit(1);
}
// a schema without `additionalProperties: false` would gain a field named `additionalProperties`
const processorOptions = { interpreter: { ignoreAdditionalProperties: true } };
const languages = {
  typescript: {
    generator: new TypeScriptFileGenerator({
      modelType: 'interface',
      enumType: 'union',
      mapType: 'record',
      rawPropertyNames: true,
      moduleSystem: 'ESM',
      processorOptions,
    }),
    options: { exportType: 'named' },
  },
  // pydantic models parse by the wire names (`alias`), whatever Python name a field gets
  python: {
    generator: new PythonFileGenerator({ presets: [PYTHON_PYDANTIC_PRESET], processorOptions }),
    options: {},
    folder: 'python/asyncapimodels',
  },
  java: {
    generator: new JavaFileGenerator({ presets: [JAVA_JACKSON_PRESET], processorOptions }),
    options: { packageName: 'agentroster.generated' },
  },
  go: {
    generator: new GoFileGenerator({
      presets: [{ preset: GO_COMMON_PRESET, options: { addJsonTag: true } }], // encoding/json tags
      // Modelina's Go `int` is 32 bits on 32-bit platforms: say `format: int64` as int64
      typeMapping: {
        Integer: ({ constrainedModel, partOfProperty }) => {
          const type = constrainedModel.options.format === 'int64' ? 'int64' : 'int';
          const optional = constrainedModel.options.isNullable && !partOfProperty?.required;
          return optional ? `*${type}` : type;
        },
      },
      processorOptions,
    }),
    options: { packageName: 'generated' },
  },
};
const headers = new Set(document.allMessages().map((m) => m.headers()?.json()).filter(Boolean));
for (const [language, { generator, options, folder }] of Object.entries(languages)) {
  const dir = resolve(out, folder ?? language);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const models = await generator.generateToFiles(document, dir, options, true);
  for (const schema of headers) {
    models.push(...(await generator.generateToFiles(schema, dir, options, true)));
  }
  const names = [...new Set(models.map((m) => m.modelName))].sort();
  console.error(`${language}: ${names.join(', ')}`);
}
