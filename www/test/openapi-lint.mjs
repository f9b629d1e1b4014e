// Lints docs/openapi.yaml (or the file given) with swagger-parser: the
// OpenAPI 3.1 schema, every $ref resolves, and what the spec asks beyond
// its schema (unique operationIds, path parameters declared...).  Prints
// "ok" or the problems, and exits non-zero on any.  No network.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';

const root = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(root, '..', '..', 'docs', 'openapi.yaml');

try {
  const api = await SwaggerParser.validate(file, { resolve: { external: false } });
  console.log(`ok: ${file} is valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
} catch (err) {
  console.log(`not ok: ${file}: ${err.message}`);
  for (const d of err.details ?? []) console.log(`  ${JSON.stringify(d)}`);
  process.exit(1);
}
