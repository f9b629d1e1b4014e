// Uploads past the server's rate limit (nginx's limit_req, answered 429
// rate_limited with Retry-After by bulletdrop_error_page): the app waits
// as told and sends them again, so that ten files dropped at once all
// arrive, and says why they wait.  t/088 runs it against a stack with
// the production site's upload zone (2 r/s, burst 5).
import { Tap, env, launch, newContext, uniq, png, b64, apiRegister, uiLogin, dropFiles, shot } from './lib.mjs';

const tap = new Tap('uploads past the rate limit');
const browser = await launch(tap);
const ctx = await newContext(browser);
const page = await ctx.newPage();
const user = uniq('rl');
const password = 'a long enough password';

await tap.step('a user signs in', async () => {
  await apiRegister(user, password);
  await uiLogin(page, user, password);
});

const statuses = [];
page.on('response', (r) => {
  if (r.request().method() === 'POST' && r.url().endsWith('/api/uploads')) statuses.push(r.status());
});

await tap.step('ten files dropped at once all arrive', async () => {
  await page.evaluate(() => {
    window.__notes = [];
    new MutationObserver(() => {
      for (const n of document.querySelectorAll('[data-testid=upload-note]')) window.__notes.push(n.textContent);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const files = Array.from({ length: 10 }, (_, i) => ({ name: `burst-${i}.png`, type: 'image/png', b64: b64(png(32, 24, i + 1)) }));
  await dropFiles(page, files);
  await page.waitForFunction(
    () => {
      const items = [...document.querySelectorAll('[data-testid=upload-item]')].filter((el) => /burst-\d\.png/.test(el.textContent));
      return items.length === 10 && items.every((el) => el.dataset.status !== 'queued' && el.dataset.status !== 'uploading');
    },
    null,
    { timeout: 30000 },
  );
  const done = await page.locator('[data-testid=upload-item][data-status=done]').count();
  const errors = await page.getByTestId('upload-error').allTextContents();
  tap.check(done === 10, `${done} of 10 done; errors: ${errors.join(' | ')}`);
});

await tap.step('the server did refuse some, and the app said why they waited', async () => {
  const refused = statuses.filter((s) => s === 429).length;
  tap.check(refused > 0, `answers: ${statuses.join(' ')}`);
  tap.check(statuses.filter((s) => s === 201).length === 10, `answers: ${statuses.join(' ')}`);
  const notes = await page.evaluate(() => window.__notes);
  tap.check(notes.some((n) => /^Waiting \d+ seconds?: the server takes only a few uploads a second\.$/.test(n)), `notes: ${notes.slice(0, 3).join(' | ')}`);
  await shot(page, 'uploads-rate-limited');
});

await tap.finish();
