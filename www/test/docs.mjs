// The API docs in a real browser: /docs renders docs/openapi.yaml (as
// /api/openapi.json) with Swagger UI, every operation listed, under the
// docs' own CSP with no violation and nothing asked of another host.
// BD_OPERATIONS: how many operations the document has.
import { Tap, env, launch } from './lib.mjs';
import path from 'node:path';

const tap = new Tap('docs');
const browser = await launch(tap);
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

const problems = [];
const elsewhere = [];
page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
page.on('pageerror', (e) => problems.push(String(e)));
page.on('request', (r) => { if (!r.url().startsWith(env.url) && !r.url().startsWith('data:')) elsewhere.push(r.url()); });

await tap.step('opens /docs and sees the API\'s title and version', async () => {
  const res = await page.goto(`${env.url}/docs`);
  tap.check(res.status() === 200, `status ${res.status()}`);
  await page.getByRole('heading', { name: /BulletDrop API/ }).first().waitFor({ timeout: 20000 });
  tap.check(await page.getByText('0.14.0').first().isVisible(), 'the version shows');
  await page.screenshot({ path: path.join(env.shots, 'docs-top-1280.png') });
});

await tap.step('every operation of the document is listed', async () => {
  const want = Number(process.env.BD_OPERATIONS);
  await page.locator('.opblock').first().waitFor();
  const n = await page.locator('.opblock').count();
  tap.check(n === want, `${n} operations shown, the document has ${want}`);
  for (const p of ['/api/uploads', '/d/{token}', '/api/auth/login', '/metrics']) {
    tap.check(await page.locator(`.opblock-summary-path[data-path="${p}"]`).count() > 0, `${p} is listed`);
  }
});

await tap.step('an operation opens with its parameters and the error schema', async () => {
  const op = page.locator('#operations-uploads-upload');
  await op.locator('.opblock-summary-control').click();
  await op.getByText('X-BulletDrop-Expires').first().waitFor();
  await page.screenshot({ path: path.join(env.shots, 'docs-1280.png'), fullPage: false });
});

await tap.step('no script error, no CSP violation, nothing from another host', async () => {
  tap.check(problems.length === 0, `errors: ${problems.join(' | ')}`);
  tap.check(elsewhere.length === 0, `asked elsewhere: ${elsewhere.join(' ')}`);
});

await tap.finish();
