// Screenshots of every page at phone and desktop widths (light and dark),
// and the gallery's first load with 100 files: time to the 100th tile and
// the layout shift (CLS) while it loads and scrolls.
import { Tap, env, launch, newContext, png, dropFiles, b64, uniq, shot, apiRegister, cookieLogin, uiLogin } from './lib.mjs';

const tap = new Tap('screens');
const browser = await launch(tap);
const password = 'correct horse battery';

async function upload(cookie, name, bytes, headers = {}) {
  const form = new FormData();
  form.append('file', new Blob([bytes]), name);
  const r = await fetch(`${env.url}/api/uploads`, { method: 'POST', headers: { Cookie: cookie, Origin: env.url, ...headers }, body: form });
  if (r.status !== 201) throw new Error(`upload ${name}: ${r.status} ${await r.text()}`);
  return r.json();
}

// A user with a few files of each kind, for the pictures.
const demo = uniq('demo');
const demoCookie = await tap.step('a demo user with files of each kind', async () => {
  await apiRegister(demo, password);
  const cookie = await cookieLogin(demo, password);
  await upload(cookie, 'quarterly-report.pdf', Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'));
  await upload(cookie, 'notes.md', '# Notes\n\nSome text.\n');
  await upload(cookie, 'secret-plan.png', png(200, 150, 7), { 'X-BulletDrop-Max-Views': '1' });
  await upload(cookie, 'expiring.png', png(200, 150, 9), { 'X-BulletDrop-Expires': '7d' });
  for (let i = 0; i < 6; i++) await upload(cookie, `screenshot-2026-11-${10 + i}.png`, png(320, 200, i));
  return cookie;
});

for (const scheme of ['light', 'dark']) {
  for (const width of [375, 1280]) {
    const tag = `${width}-${scheme}`;
    await tap.step(`pages at ${width} px, ${scheme}`, async () => {
      const ctx = await newContext(browser, { viewport: { width, height: width < 600 ? 780 : 860 }, colorScheme: scheme, deviceScaleFactor: 1 });
      const page = await ctx.newPage();
      await page.goto(`${env.url}/login`);
      await page.getByTestId('login-username').waitFor();
      await shot(page, `signin-${tag}`);
      await page.goto(`${env.url}/register`);
      await page.getByTestId('register-username').waitFor();
      await shot(page, `register-${tag}`);

      await uiLogin(page, demo, password);
      await page.getByTestId('gallery-item').nth(9).waitFor();
      await page.waitForFunction(() => [...document.querySelectorAll('.tile img')].every((i) => i.complete));
      await shot(page, `files-${tag}`);

      // an upload in progress: slow the network, drop a big text file
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 512 * 1024 });
      await dropFiles(page, [
        { name: 'holiday-video.txt', type: 'text/plain', size: 6 * 1024 * 1024 },
        { name: 'fake.png', type: 'image/png', b64: b64('not a png') },
      ]);
      await page.locator('[data-testid=upload-item][data-status=error]').waitFor();
      await page.waitForFunction(() => {
        const p = document.querySelector('[data-testid=upload-item][data-status=uploading] [data-testid=upload-progress]');
        return p && p.value > p.max * 0.15;
      });
      await shot(page, `upload-progress-${tag}`);
      await page.getByTestId('upload-cancel').click();
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

      await page.locator('[data-testid=gallery-item]', { hasText: 'screenshot-2026-11-15' }).getByTestId('file-details').click();
      await page.getByTestId('details-dialog').waitFor();
      await page.waitForTimeout(150);
      await shot(page, `details-${tag}`);
      await page.keyboard.press('Escape');

      await page.getByTestId('nav-settings').click();
      await page.getByTestId('apikey-name').fill('Laptop ShareX');
      await page.getByTestId('apikey-create').click();
      await page.getByTestId('apikey-secret').waitFor();
      await shot(page, `settings-${tag}`);
      await page.screenshot({ path: `${env.shots}/settings-full-${tag}.png`, fullPage: true });
      await page.getByTestId('signout').click();

      await uiLogin(page, env.adminUser, env.adminPassword);
      await page.getByTestId('nav-admin').click();
      await page.getByTestId('admin-user-row').first().waitFor();
      await page.getByTestId('invite-create').click();
      await page.getByTestId('invite-code').waitFor();
      await page.getByTestId('domain-row').first().waitFor();
      await shot(page, `admin-${tag}`);
      await page.screenshot({ path: `${env.shots}/admin-full-${tag}.png`, fullPage: true });
      await page.getByTestId('signout').click();
      tap.check(ctx.dialogs.length === 0, `dialogs: ${ctx.dialogs}`);
      await ctx.close();
    });
  }
}

// 100 files, then a cold first load of the gallery.
const many = uniq('many');
const manyCookie = await tap.step('a user with 100 images (uploaded through the API)', async () => {
  await apiRegister(many, password);
  const cookie = await cookieLogin(many, password);
  const jobs = Array.from({ length: 100 }, (_, i) => i);
  const worker = async () => {
    for (let i; (i = jobs.shift()) !== undefined; ) await upload(cookie, `shot-${String(i).padStart(3, '0')}.png`, png(160, 100, i));
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return cookie;
});

await tap.step('the gallery shows its 100th tile within 1 s, with no layout shift', async () => {
  const ctx = await newContext(browser, { viewport: { width: 1280, height: 860 } });
  await ctx.addCookies(
    manyCookie.split('; ').map((c) => {
      const [name, ...v] = c.split('=');
      return { name, value: v.join('='), url: `${env.url}/api/` };
    }),
  );
  // Before any script of the page: watch for layout shifts, and note when
  // the 100th tile is in the document.
  await ctx.addInitScript(() => {
    window.__cls = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.hadRecentInput) continue;
        window.__cls += e.value;
        // what moved, to say so when it fails
        window.__shifts = (window.__shifts || []).concat(
          e.sources.map((s) => `${e.value.toFixed(3)} ${s.node?.nodeName}.${s.node?.className || ''} at ${e.startTime.toFixed(0)} ms`),
        );
      }
    }).observe({ type: 'layout-shift', buffered: true });
    new MutationObserver((_, obs) => {
      if (document.querySelectorAll('[data-testid=gallery-item]').length >= 100) {
        window.__t100 = performance.now();
        obs.disconnect();
      }
    }).observe(document, { subtree: true, childList: true });
  });
  const page = await ctx.newPage();
  const pages = [];
  page.on('request', (r) => r.url().includes('/api/uploads?') && pages.push(r.url()));
  await page.goto(`${env.url}/files`);
  const last = page.getByTestId('gallery-item').nth(99);
  await last.waitFor();
  const t100 = await page.evaluate(() => window.__t100);
  await last.scrollIntoViewIfNeeded();
  tap.check(await last.isVisible(), '100th tile visible');
  // scroll through so the lazy images load, then let shifts settle
  for (let y = 0; y < 8; y++) {
    await page.mouse.wheel(0, -600);
    await page.waitForTimeout(80);
  }
  await page.waitForFunction(() => [...document.querySelectorAll('.tile img')].filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete));
  await page.waitForTimeout(300);
  const cls = await page.evaluate(() => window.__cls);
  console.log(`# gallery: 100th tile in the document ${t100.toFixed(0)} ms after navigation start; CLS ${cls.toFixed(4)}`);
  for (const s of (await page.evaluate(() => window.__shifts)) || []) console.log(`#   shift ${s}`);
  tap.check(t100 < 1000, `100th tile after ${t100.toFixed(0)} ms`);
  tap.check(cls < 0.01, `CLS ${cls}: ${await page.evaluate(() => window.__shifts)}`);

  // a full page means there may be more: scrolling to the end asked for the
  // next page by itself (it is empty), and Load more is gone
  tap.check(pages.some((u) => u.includes('before=')), `pages asked: ${pages}`);
  await page.getByTestId('load-more').waitFor({ state: 'detached' });
  tap.check((await page.getByTestId('gallery-item').count()) === 100, 'still 100 tiles');
  await page.getByTestId('category-filter').locator('[data-value=documents]').click();
  await page.getByTestId('filter-empty').waitFor();
  await ctx.close();
});

await tap.finish();
