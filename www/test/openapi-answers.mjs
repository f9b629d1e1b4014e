// Checks answers the test suite received against docs/openapi.yaml.
//
//   node openapi-answers.mjs ANSWERS.jsonl [openapi.yaml]
//
// ANSWERS.jsonl has a line per answer, as t/lib/BulletDrop/HTTP.pm records
// them: {method, path, host, status, type, allow, retry_after, bytes,
// json, json_error}.  Each is matched to the document's operation (HEAD as
// GET) and its response for that status, and its body validated against
// the response's schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 has it).
// A path the document does not have must have had the router's 404
// not_found; a method a path does not take, its 405 with Allow.  Prints a
// line per kind of mismatch (with how many answers had it) and exits 1 on
// any; prints "ok ..." otherwise.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const [answersFile, docFile = path.join(here, '..', '..', 'docs', 'openapi.yaml')] =
  process.argv.slice(2);
if (!answersFile) {
  console.error('usage: openapi-answers.mjs ANSWERS.jsonl [openapi.yaml]');
  process.exit(2);
}

const doc = YAML.parse(readFileSync(docFile, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv);
ajv.addSchema(doc, 'openapi');

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const compiled = new Map();
function validator(pointer) {
  if (!compiled.has(pointer)) compiled.set(pointer, ajv.compile({ $ref: `openapi#${pointer}` }));
  return compiled.get(pointer);
}

// the object at a JSON pointer of the document
function at(pointer) {
  return pointer.split('/').slice(1).reduce(
    (o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

// follows $ref: [object, its pointer]
function deref(obj, pointer) {
  while (obj && obj.$ref) {
    pointer = obj.$ref.replace(/^#/, '');
    obj = at(pointer);
  }
  return [obj, pointer];
}

// the document's paths as patterns: {template} is one segment
const routes = Object.entries(doc.paths).map(([template, item]) => ({
  template, item,
  re: new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
    .replace(/\{[^}]+\}/g, '[^/]+') + '$'),
}));
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const base = (t) => (t ?? '').split(';')[0].trim().toLowerCase();

function check(a) {
  const method = a.method === 'HEAD' ? 'get' : a.method.toLowerCase();
  // the path as nginx matches it: without scheme and host, query, and
  // with %-escapes decoded
  let p = a.path.replace(/^[a-z]+:\/\/[^/]*/i, '').split('?')[0].split('#')[0];
  try { p = decodeURIComponent(p); } catch { /* as sent */ }
  // as the router does: the first path that fits and takes the method;
  // a 405's Allow is what all the paths that fit take
  const fits = routes.filter((r) => r.re.test(p));
  const route = fits.find((r) => r.item[method]) ?? fits[0];
  const errorAnswer = (schema, what) => {
    if (a.method === 'HEAD') return [];
    if (base(a.type) !== 'application/json') return [`${what}, but a ${a.type ?? 'typeless'} answer`];
    if (a.json_error) return [`${what}, but its body is not JSON`];
    const v = validator(`/components/schemas/${schema}`);
    return v(a.json) ? [] : [`${what}: ${ajv.errorsText(v.errors, { dataVar: 'body' })}`];
  };

  // a file domain answers this to any path but its files', the API's too
  if (a.status === 404 && base(a.type) === 'application/json' && !a.json_error
      && validator('/components/schemas/FileDomainOnly')(a.json)) {
    return [];
  }

  // the router's 404 for what the document does not have; a path served
  // by nginx gets it where that location is not configured
  if (!route || (route.item['x-bulletdrop-served-by'] && a.status === 404
                 && base(a.type) === 'application/json')) {
    if (a.status !== 404) return [`undocumented path answered ${a.status}`];
    return errorAnswer('Error404', 'undocumented path answered 404');
  }

  const op = route.item[method];
  if (!op) {
    if (a.status !== 405) {
      return [`${a.method} is not documented for ${route.template}, and answered ${a.status}`];
    }
    const allowed = [...new Set(fits.flatMap((r) => METHODS.filter((m) => r.item[m])))]
      .map((m) => m.toUpperCase());
    if (allowed.includes('GET')) allowed.push('HEAD');
    const problems = errorAnswer('Error405', 'a method the path does not take');
    const allow = (a.allow ?? '').split(/\s*,\s*/).filter(Boolean).sort();
    if (allow.join(',') !== allowed.sort().join(',')) {
      problems.push(`405 with Allow "${a.allow ?? ''}", the document says ${allowed.join(', ')}`);
    }
    return problems;
  }

  const where = `/paths/${esc(route.template)}/${method}/responses/${a.status}`;
  const [res, resPointer] = deref(op.responses[String(a.status)], where);
  if (!res) return [`status ${a.status} is not documented`];

  const problems = [];
  for (const h of ['Retry-After', 'Allow']) {
    const key = h.toLowerCase().replace('-', '_');
    if (res.headers?.[h] && a.status >= 400 && a[key] === undefined && a.method !== 'HEAD') {
      problems.push(`no ${h} header`);
    }
  }
  if (a.method === 'HEAD') return problems;

  if (!res.content) {
    if (a.bytes) problems.push(`a body of ${a.bytes} bytes where none is documented`);
    return problems;
  }
  const mt = Object.keys(res.content).find((k) => base(k) === base(a.type) || k === '*/*');
  if (!mt) {
    return [...problems, `content type ${a.type ?? '(none)'} is not documented (${Object.keys(res.content).join(', ')})`];
  }
  if (base(mt) !== 'application/json') return problems;
  if (a.json_error) return [...problems, 'the body is not JSON'];
  const v = validator(`${resPointer}/content/${esc(mt)}/schema`);
  if (!v(a.json)) problems.push(ajv.errorsText(v.errors, { dataVar: 'body' }));
  return problems;
}

const lines = readFileSync(answersFile, 'utf8').split('\n').filter(Boolean);
const seen = new Map();
let n = 0;
for (const line of lines) {
  let a;
  try { a = JSON.parse(line); } catch { continue; }   // a line a killed writer cut short
  n++;
  for (const problem of check(a)) {
    const key = `${a.method} ${a.path.split('?')[0]} -> ${a.status}: ${problem}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
}

if (seen.size) {
  for (const [key, count] of seen) console.log(`${key}${count > 1 ? ` (${count} answers)` : ''}`);
  process.exit(1);
}
console.log(`ok: ${n} answers match ${path.basename(docFile)}`);
