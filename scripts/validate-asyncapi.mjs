// Parse AsyncAPI documents with @asyncapi/parser and fail on any error diagnostic.
// Usage: node scripts/validate-asyncapi.mjs <tools dir with node_modules> <file>...
// Run through scripts/validate-asyncapi, which installs the parser first.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [toolsDir, ...files] = process.argv.slice(2);
if (!toolsDir || files.length === 0) {
  console.error("usage: validate-asyncapi.mjs <tools dir> <file>...");
  process.exit(2);
}
const require = createRequire(resolve(toolsDir, "package.json"));
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");
const parserVersion = require("@asyncapi/parser/package.json").version;

const severityName = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

const parser = new Parser();
let failed = false;
for (const file of files) {
  const source = resolve(file);
  const { document, diagnostics } = await parser.parse(readFileSync(source, "utf8"), { source });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join("/") : "(document)";
    const line = d.range ? `:${d.range.start.line + 1}` : "";
    console.log(`${file}${line}: ${severityName[d.severity] ?? d.severity}: ${d.code}: ${d.message} at ${where}`);
  }
  if (errors.length > 0 || document === undefined) {
    failed = true;
    console.log(`${file}: INVALID (${errors.length} errors, ${diagnostics.length - errors.length} other diagnostics)`);
  } else {
    const version = document.version();
    console.log(`${file}: valid AsyncAPI ${version} (${diagnostics.length} non-error diagnostics)`);
  }
}
console.log(`@asyncapi/parser ${parserVersion}`);
process.exitCode = failed ? 1 : 0;
