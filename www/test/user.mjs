// A new user's day: register, sign in, paste, drop, copy, open, delete, be
// refused in words, sign out.
import { createHash } from 'node:crypto';
import { Tap, env, launch, newContext, png, dropFiles, b64, uniq, config } from './lib.mjs';

const tap = new Tap('user');
const cfg = await tap.step('GET /api/config answers', config);
const browser = await launch(tap);
const ctx = await newContext(browser);
const page = await ctx.newPage();
const user = uniq('u');
const password = 'correct horse battery';

await tap.step('a visitor is sent to sign in, and registers from there', async () => {
  await page.goto(`${env.url}/`);
  await page.getByTestId('login-username').waitFor();
  tap.check(new URL(page.url()).pathname === '/login', `at ${page.url()}`);
  await page.getByTestId('register-link').click();
  await page.getByTestId('register-username').fill(user);
  await page.getByTestId('register-password').fill(password);
  await page.getByTestId('register-submit').click();
  await page.getByTestId('empty-state').waitFor();
});

await tap.step('signs out and signs in again with the form', async () => {
  await page.getByTestId('signout').click();
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill('not the password');
  await page.getByTestId('login-submit').click();
  const err = await page.getByTestId('login-error').textContent();
  tap.check(/wrong user name or password/i.test(err), `error said: ${err}`);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('empty-state').waitFor();
});

const shotPng = png(80, 60, 1);
let pastedUrl;
await tap.step('a pasted image is uploaded, its link copied, and it shows in the gallery', async () => {
  // a real Ctrl+V of an image on the clipboard: a user gesture, as a person's
  await page.evaluate(async (b) => {
    const bytes = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
  }, b64(shotPng));
  await page.keyboard.press('Control+V');
  const link = page.getByTestId('upload-result-link').first();
  await link.waitFor();
  pastedUrl = await link.getAttribute('href');
  await page.getByTestId('toast').filter({ hasText: 'Link copied' }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  tap.check(clip === pastedUrl, `clipboard ${clip} vs ${pastedUrl}`);
  await page.locator('[data-testid=gallery-item]').first().waitFor();
  tap.check((await page.getByTestId('gallery-item').count()) === 1, 'one tile');
  const img = page.locator('[data-testid=gallery-item] img');
  tap.check((await img.getAttribute('src')) === pastedUrl, 'the tile shows the image from its file domain');
});

await tap.step('three dropped files each show progress, then a link', async () => {
  // count the progress bars as they come and go (small files are quick)
  await page.evaluate(() => {
    window.__progressSeen = new Set();
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid=upload-progress]')) window.__progressSeen.add(el.closest('[data-testid=upload-item]'));
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  const { overlay } = await dropFiles(page, [
    { name: 'one.png', type: 'image/png', b64: b64(png(300, 200, 2)) },
    { name: 'two.png', type: 'image/png', b64: b64(png(120, 90, 3)) },
    { name: 'notes.txt', type: 'text/plain', b64: b64('three\n') },
  ]);
  tap.check(overlay, 'the drop overlay showed while dragging');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=upload-result-link]').length === 4);
  const seen = await page.evaluate(() => window.__progressSeen.size);
  tap.check(seen >= 3, `progress bars seen for ${seen} uploads`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=gallery-item]').length === 4);
});

await tap.step('an upload that ends after the gesture wore off offers a button to copy', async () => {
  // A browser lets a page write the clipboard only while the user's gesture
  // is fresh (5 s); past that it would ask for a permission. The drop comes
  // from a timer 6 s after the last gesture, so it finishes without one.
  await page.evaluate((b) => {
    setTimeout(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b), (c) => c.charCodeAt(0))], 'late.png', { type: 'image/png' }));
      const target = document.querySelector('main') || document.body;
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, 6000);
  }, b64(png(40, 30, 9)));
  // no polling meanwhile: Playwright's evaluations count as gestures
  await new Promise((r) => setTimeout(r, 8000));
  const action = page.getByTestId('toast-action');
  tap.check(/late\.png is uploaded/.test(await page.getByTestId('toast').innerText()), 'the toast says it is uploaded');
  await page.evaluate(() => navigator.clipboard.writeText('nothing'));
  await action.click();
  await page.getByTestId('toast').filter({ hasText: 'Link copied' }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  tap.check(/late|\/static\/images\//.test(clip) && clip.startsWith('http'), `"Copy link" copied ${clip}`);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=gallery-item]').length === 5);
});

await tap.step('a copied link is on the clipboard', async () => {
  await page.evaluate(() => navigator.clipboard.writeText('nothing'));
  const tile = page.getByTestId('gallery-item').first();
  await tile.getByTestId('file-copy-link').click();
  await page.getByTestId('toast').filter({ hasText: 'Link copied' }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  const id = await tile.getAttribute('data-id');
  tap.check(clip.includes(id) && /^https?:\/\//.test(clip), `clipboard has ${clip}`);
});

await tap.step('the link opens on its file domain with the same bytes', async () => {
  const host = new URL(pastedUrl).hostname;
  tap.check(host !== new URL(env.url).hostname, `link on ${host}`);
  const p2 = await ctx.newPage();
  const res = await p2.goto(pastedUrl);
  tap.check(res.status() === 200, `status ${res.status()}`);
  const body = await res.body();
  // a pasted image is the browser's own encoding of the picture, not the
  // bytes put on the clipboard: what is served must be what was stored
  const id = new URL(pastedUrl).pathname.split('/').pop().split('.')[0];
  const rec = await page.evaluate((id) => fetch(`/api/uploads/${id}`).then((r) => r.json()), id);
  const sha = createHash('sha256').update(body).digest('hex');
  tap.check(sha === rec.sha256 && body.length === rec.size, `served ${body.length} bytes, sha256 ${sha} vs ${rec.sha256}`);
  tap.check(body.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex')), 'a PNG');
  await p2.close();
});

await tap.step('deleting a file (confirmed) takes it off the grid and the server', async () => {
  const tile = page.getByTestId('gallery-item').first();
  const id = await tile.getAttribute('data-id');
  await tile.getByTestId('file-delete').click();
  await page.getByTestId('confirm-ok').click();
  await page.locator(`[data-testid=gallery-item][data-id="${id}"]`).waitFor({ state: 'detached' });
  tap.check((await page.getByTestId('gallery-item').count()) === 4, 'four left');
  const status = await page.evaluate((id) => fetch(`/api/uploads/${id}`).then((r) => r.status), id);
  tap.check(status === 404, `GET after delete: ${status}`);
});

await tap.step('a file over the size limit is refused in words, without sending it', async () => {
  let posts = 0;
  const count = (r) => r.method() === 'POST' && r.url().includes('/api/uploads') && posts++;
  page.on('request', count);
  await dropFiles(page, [{ name: 'huge.png', type: 'image/png', size: cfg.max_file_size + 1 }]);
  const err = page.getByTestId('upload-error').first();
  await err.waitFor();
  const text = await err.textContent();
  tap.check(/too large/i.test(text) && /limit/.test(text), `said: ${text}`);
  page.off('request', count);
  tap.check(posts === 0, `${posts} uploads were sent`);
});

await tap.step('a .png that is not a PNG is refused by the server, in words', async () => {
  await dropFiles(page, [{ name: 'fake.png', type: 'image/png', b64: b64('this is plain text, not an image\n') }]);
  const err = page.locator('[data-testid=upload-item]', { hasText: 'fake.png' }).getByTestId('upload-error');
  await err.waitFor();
  const text = await err.textContent();
  tap.check(/do not match its extension/.test(text), `said: ${text}`);
});

await tap.step('a cancelled upload stops and says so', async () => {
  // slow the network so the upload is still on its way when cancelled
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  await dropFiles(page, [{ name: 'slow.txt', type: 'text/plain', size: 4 * 1024 * 1024 }]);
  const item = page.locator('[data-testid=upload-item]', { hasText: 'slow.txt' });
  await item.getByTestId('upload-progress').waitFor();
  await item.getByTestId('upload-cancel').click();
  await page.locator('[data-testid=upload-item][data-status=cancelled]', { hasText: 'slow.txt' }).waitFor();
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
});

await tap.step('a large image is not loaded whole into a tile', async () => {
  // 9 MB behind a PNG's head: over the gallery's 8 MB for a tile
  const rec = await page.evaluate(async (head) => {
    const bytes = Uint8Array.from(atob(head), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append('file', new Blob([bytes, new Uint8Array(9 * 1024 * 1024)], { type: 'image/png' }), 'huge.png');
    const r = await fetch('/api/uploads', { method: 'POST', body: form });
    return r.json();
  }, b64(png(20, 20, 4)));
  tap.check(!!rec.id, `uploaded: ${JSON.stringify(rec).slice(0, 120)}`);
  const fetched = [];
  page.on('request', (r) => r.url() === rec.url && fetched.push(r.url()));
  await page.reload();
  const tile = page.locator(`[data-testid=gallery-item][data-id="${rec.id}"]`);
  await tile.waitFor();
  tap.check((await tile.locator('img').count()) === 0, 'no <img> in its tile');
  tap.check(/Large image/.test(await tile.innerText()), 'the tile says it is a large image');
  await tile.getByTestId('file-details').click();
  const full = page.getByTestId('details-dialog').locator('img');
  await full.waitFor();
  tap.check((await full.getAttribute('src')) === rec.url, 'its details show the image itself');
  await page.keyboard.press('Escape');
  tap.check(fetched.length <= 1, `fetched ${fetched.length} time(s), by the details only`);
});

await tap.step('signing out ends the session', async () => {
  await page.getByTestId('signout').click();
  await page.getByTestId('login-username').waitFor();
  const status = await page.evaluate(() => fetch('/api/users/me').then((r) => r.status));
  tap.check(status === 401, `GET /api/users/me after sign-out: ${status}`);
  tap.check(ctx.dialogs.length === 0, `dialogs: ${ctx.dialogs}`);
});

await tap.finish();
