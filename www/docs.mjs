// The API docs into dist/: docs/openapi.yaml (the repository's) as
// dist/api/openapi.json, and Swagger UI's static files (from
// swagger-ui-dist) with our page under dist/docs/.  nginx serves them
// (nginx-conf/webapp.conf); nothing is fetched at run time.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import YAML from 'yaml';

const require = createRequire(import.meta.url);

export async function buildDocs(root, dist) {
  const source = path.join(root, '..', 'docs', 'openapi.yaml');
  const doc = YAML.parse(await fs.readFile(source, 'utf8'), { strict: true, uniqueKeys: true });
  if (!doc || typeof doc.openapi !== 'string') throw new Error(`${source} is not an OpenAPI document`);

  await fs.mkdir(path.join(dist, 'api'), { recursive: true });
  await fs.writeFile(path.join(dist, 'api', 'openapi.json'), JSON.stringify(doc, null, 1) + '\n');

  const ui = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const out = path.join(dist, 'docs');
  await fs.mkdir(out, { recursive: true });
  for (const f of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
    await fs.copyFile(path.join(ui, f), path.join(out, f));
  }
  for (const f of ['index.html', 'init.js']) {
    await fs.copyFile(path.join(root, 'docs', f), path.join(out, f));
  }
  console.log(`api/openapi.json and docs/ (Swagger UI ${require('swagger-ui-dist/package.json').version})`);
}
