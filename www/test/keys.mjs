// An API key made in Settings works as a Bearer token until it is revoked
// in Settings.
import { Tap, env, launch, newContext, uniq, apiRegister, uiLogin } from './lib.mjs';

const tap = new Tap('keys');
const browser = await launch(tap);
const ctx = await newContext(browser);
const page = await ctx.newPage();
const user = uniq('k');
const password = 'correct horse battery';
const me = (key) => fetch(`${env.url}/api/users/me`, { headers: { Authorization: `Bearer ${key}` } });

await tap.step('a user signs in and opens Settings', async () => {
  await apiRegister(user, password);
  await uiLogin(page, user, password);
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('apikey-name').waitFor();
});

const name = 'curl on my laptop';
const key = await tap.step('creates a key, shown once with a warning', async () => {
  await page.getByTestId('apikey-name').fill(name);
  await page.getByTestId('apikey-create').click();
  const secret = (await page.getByTestId('apikey-secret').textContent()).trim();
  tap.check(/^bd_[A-Za-z0-9_-]{20,}$/.test(secret), `key looks like ${secret}`);
  tap.check(await page.getByText('will not be shown again').isVisible(), 'warned');
  const row = page.getByTestId('apikey-row').filter({ hasText: name });
  await row.waitFor();
  tap.check((await row.textContent()).includes(secret.slice(0, 11)), 'the row shows its prefix');
  return secret;
});

await tap.step('the key works with curl-style Bearer auth', async () => {
  const r = await me(key);
  tap.check(r.status === 200, `status ${r.status}`);
  const p = await r.json();
  tap.check(p.username === user, `answered for ${p.username}`);
});

await tap.step('after a reload the key is shown nowhere', async () => {
  await page.reload();
  await page.getByTestId('apikey-row').first().waitFor();
  tap.check((await page.getByTestId('apikey-secret').count()) === 0, 'no secret after reload');
  tap.check(!(await page.content()).includes(key), 'the key is nowhere in the page');
});

await tap.step('revoking it in the UI (confirmed) removes the row', async () => {
  const row = page.getByTestId('apikey-row').filter({ hasText: name });
  await row.getByTestId('apikey-revoke').click();
  await page.getByTestId('confirm-ok').click();
  await row.waitFor({ state: 'detached' });
});

await tap.step('the revoked key is refused with 401', async () => {
  const r = await me(key);
  tap.check(r.status === 401, `status ${r.status}`);
});

await tap.step('the ShareX download is a .sxcu holding a new key, listed in Settings', async () => {
  const before = await page.getByTestId('apikey-row').count();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('sharex-download').click()]);
  tap.check(download.suggestedFilename().endsWith('.sxcu'), `file ${download.suggestedFilename()}`);
  const path = `${env.work}/keys-${user}.sxcu`;
  await download.saveAs(path);
  const sxcu = JSON.parse(await (await import('node:fs/promises')).readFile(path, 'utf8'));
  const auth = JSON.stringify(sxcu);
  const m = /bd_[A-Za-z0-9_-]{20,}/.exec(auth);
  tap.check(m, 'the .sxcu holds a key');
  tap.check((await me(m[0])).status === 200, 'and the key works');
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=apikey-row]').length === n + 1, before);
});

await tap.step('a password change keeps the session going', async () => {
  await page.getByTestId('password-current').fill(password);
  await page.getByTestId('password-new').fill(password + '!');
  await page.getByTestId('password-again').fill(password + '!');
  await page.getByTestId('password-save').click();
  await page.getByTestId('toast').filter({ hasText: 'Password changed' }).waitFor();
  await page.reload();
  await page.getByTestId('apikey-name').waitFor();
  tap.check(new URL(page.url()).pathname === '/settings', `at ${page.url()}`);
});

await tap.finish();
