// The session cookie is out of scripts' reach and refused cross-site;
// hostile file names and file contents show as text and never run; the
// app itself runs under its strict CSP without a violation.
import { Tap, env, launch, newContext, png, dropFiles, b64, uniq, apiRegister, uiLogin } from './lib.mjs';

const tap = new Tap('security');
const browser = await launch(tap);
const ctx = await newContext(browser);
// every CSP violation of the app's pages is a failure
await ctx.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
});
const page = await ctx.newPage();
const user = uniq('sec');
const password = 'correct horse battery';
const evilName = '<img src=x onerror=alert(1)>.png';
const evilText = '<script>alert(1)</script>\n';

const noDialogs = () => tap.check(ctx.dialogs.length === 0, `a dialog opened: ${ctx.dialogs.join('; ')}`);
const noViolations = async (p = page) => {
  const v = await p.evaluate(() => window.__csp);
  tap.check(v.length === 0, `CSP violations: ${v.join('; ')}`);
};

await tap.step('the app is served with a strict CSP', async () => {
  const res = await page.goto(`${env.url}/login`);
  const csp = res.headers()['content-security-policy'] || '';
  tap.check(/script-src 'self'/.test(csp) && !/unsafe-inline|unsafe-eval/.test(csp), `CSP: ${csp}`);
  await page.getByTestId('login-username').waitFor();
  await noViolations();
});

let cookie;
await tap.step('after sign-in the session cookie is HttpOnly, SameSite=Strict, Path=/api', async () => {
  await apiRegister(user, password);
  await uiLogin(page, user, password);
  const cookies = await ctx.cookies();
  const session = cookies.filter((c) => c.path === '/api' || c.httpOnly);
  tap.check(session.length >= 1, `cookies: ${JSON.stringify(cookies)}`);
  for (const c of session) {
    tap.check(c.httpOnly, `${c.name} is HttpOnly`);
    tap.check(c.sameSite === 'Strict', `${c.name} SameSite=${c.sameSite}`);
    tap.check(c.path === '/api', `${c.name} Path=${c.path}`);
  }
  const seen = await page.evaluate(() => document.cookie);
  for (const c of session) tap.check(!seen.includes(c.value), 'document.cookie holds no session');
  cookie = session.map((c) => `${c.name}=${c.value}`).join('; ');
});

await tap.step('a cross-site POST with the cookie is refused: 403 csrf', async () => {
  const r = await fetch(`${env.url}/api/users/me/api-keys`, {
    method: 'POST',
    headers: { Cookie: cookie, Origin: 'http://evil.example', 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'stolen' }),
  });
  tap.check(r.status === 403, `status ${r.status}`);
  const j = await r.json();
  tap.check(j.error === 'csrf', `error ${j.error}`);
  // the same request from the app's own origin works: it was the origin
  const ok = await fetch(`${env.url}/api/users/me`, { headers: { Cookie: cookie } });
  tap.check(ok.status === 200, `same cookie, GET: ${ok.status}`);
});

await tap.step('?next= cannot send a signed-in user off the site', async () => {
  await page.goto(`${env.url}/login?next=//evil.example/`);
  await page.getByTestId('nav-files').waitFor();
  tap.check(new URL(page.url()).origin === env.url, `now at ${page.url()}`);
});

let txtUrl;
await tap.step('a file named like markup and a text of script upload', async () => {
  await dropFiles(page, [
    { name: evilName, type: 'image/png', b64: b64(png(40, 30, 5)) },
    { name: 'xss.txt', type: 'text/plain', b64: b64(evilText) },
  ]);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=upload-result-link]').length === 2);
  txtUrl = await page.locator('[data-testid=upload-item]', { hasText: 'xss.txt' }).getByTestId('upload-result-link').getAttribute('href');
});

await tap.step('the gallery shows the name as text', async () => {
  await page.reload();
  const tile = page.getByTestId('gallery-item').filter({ hasText: 'onerror' });
  await tile.waitFor();
  tap.check((await tile.locator('.tile-name').textContent()) === evilName, 'name shown verbatim');
  tap.check((await page.locator('img[src="x"]').count()) === 0, 'no injected <img>');
  noDialogs();
});

await tap.step('the details of both show text only', async () => {
  for (const name of [evilName, 'xss.txt']) {
    await page.getByTestId('gallery-item').filter({ hasText: name }).getByTestId('file-details').click();
    const d = page.getByTestId('details-dialog');
    await d.waitFor();
    tap.check((await d.textContent()).includes(name), `details name ${name}`);
    await page.keyboard.press('Escape');
    await d.waitFor({ state: 'detached' });
  }
  tap.check((await page.locator('img[src="x"]').count()) === 0, 'no injected <img>');
  await page.waitForTimeout(200);
  noDialogs();
});

await tap.step('a key named like script shows as text in Settings', async () => {
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('apikey-name').fill('<script>alert(2)</script>');
  await page.getByTestId('apikey-create').click();
  await page.getByTestId('apikey-row').filter({ hasText: '<script>alert(2)</script>' }).waitFor();
  await page.reload();
  await page.getByTestId('apikey-row').first().waitFor();
  noDialogs();
  await noViolations();
});

await tap.step('the text file opens on its file domain as text, and runs nothing', async () => {
  const p2 = await ctx.newPage();
  const res = await p2.goto(txtUrl);
  tap.check(res.status() === 200, `status ${res.status()}`);
  tap.check(/^text\/plain/.test(res.headers()['content-type']), `type ${res.headers()['content-type']}`);
  tap.check((await p2.locator('body').textContent()).includes('<script>alert(1)</script>'), 'shown as source');
  await p2.waitForTimeout(200);
  await p2.close();
  noDialogs();
});

await tap.step('every page visited kept to the CSP', async () => {
  await page.getByTestId('nav-files').click();
  await page.getByTestId('gallery-item').first().waitFor();
  await noViolations();
});

await tap.finish();
