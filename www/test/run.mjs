// Runs every scenario in turn (`npm test`), each as its own process, and
// sums them up. Same environment as the scenarios (BD_URL, ...).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const all = ['user', 'keys', 'admin', 'security', 'screens'];
let failed = 0;
const t0 = Date.now();
for (const name of only.length ? only : all) {
  const t = Date.now();
  const r = spawnSync(process.execPath, [path.join(dir, `${name}.mjs`)], { stdio: 'inherit' });
  console.log(`# ${name}: ${r.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  if (r.status !== 0) failed++;
}
const n = (only.length || all.length);
console.log(`# all scenarios in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${n - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
