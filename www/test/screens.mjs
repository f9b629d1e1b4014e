// Screenshots of every page at phone and desktop widths (light and dark),
// and the gallery's first load with 100 files: the layout shift (CLS)
// while it loads and scrolls, and the time to the 100th tile (printed).
import { Tap, env, launch, newContext, png, dropFiles, b64, uniq, shot, apiRegister, cookieLogin, uiLogin, upload, uploadMany, loadGallery } from './lib.mjs';

const tap = new Tap('screens');
const browser = await launch(tap);
const password = 'correct horse battery';


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

// 100 files, then a cold first load of the gallery.  How fast it is, is
// for bench/webapp.sh to say (figures, not a timed test); that nothing
// moves as it loads is checked here.
const many = uniq('many');
const manyCookie = await tap.step('a user with 100 images (uploaded through the API)', async () => {
  await apiRegister(many, password);
  const cookie = await cookieLogin(many, password);
  await uploadMany(cookie, 100);
  return cookie;
});

await tap.step('the gallery shows 100 tiles with no layout shift, and pages on', async () => {
  const { ctx, page, t100, cls, shifts, pages } = await loadGallery(browser, manyCookie);
  console.log(`# gallery: 100th tile in the document ${t100.toFixed(0)} ms after navigation start; CLS ${cls.toFixed(4)}`);
  for (const s of shifts) console.log(`#   shift ${s}`);
  tap.check(cls < 0.01, `CLS ${cls}: ${shifts}`);

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
