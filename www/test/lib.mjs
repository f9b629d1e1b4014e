// Shared helpers of the browser scenarios: environment, TAP output, a
// browser with the project's flags, real PNG bytes, and sign-in shortcuts.
import { chromium } from 'playwright-core';
import { deflateSync } from 'node:zlib';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export const env = {
  url: (process.env.BD_URL || 'http://127.0.0.1:8080').replace(/\/$/, ''),
  adminUser: process.env.BD_ADMIN_USER || 'admin',
  adminPassword: process.env.BD_ADMIN_PASSWORD || '',
  shots: process.env.BD_SHOTS || '/tmp/bd-shots',
  work: process.env.BD_WORK || '/tmp/bd-work',
  chromium: process.env.BD_CHROMIUM || '/usr/bin/chromium',
};
mkdirSync(env.shots, { recursive: true });
mkdirSync(env.work, { recursive: true });

/** TAP-ish output; the first failure ends the scenario (later steps build
 *  on earlier ones), and the exit code tells the wrapper. */
export class Tap {
  constructor(name) {
    this.name = name;
    this.n = 0;
    this.failed = 0;
    this.cleanups = [];
    console.log(`# ${name} against ${env.url}`);
  }
  async step(what, fn) {
    const n = ++this.n;
    const t0 = Date.now();
    try {
      const r = await fn();
      console.log(`ok ${n} - ${what}${Date.now() - t0 > 2000 ? ` # ${Date.now() - t0} ms` : ''}`);
      return r;
    } catch (e) {
      this.failed++;
      console.log(`not ok ${n} - ${what}`);
      for (const line of String(e?.stack || e).split('\n').slice(0, 8)) console.log(`#   ${line}`);
      await this.finish();
    }
  }
  check(cond, what) {
    if (!cond) throw new Error(`check failed: ${what}`);
  }
  async finish() {
    for (const f of this.cleanups.reverse()) await f().catch(() => {});
    console.log(`1..${this.n}`);
    console.log(`${this.n - this.failed} passed, ${this.failed} failed`);
    process.exit(this.failed ? 1 : 0);
  }
}

export async function launch(tap) {
  const browser = await chromium.launch({
    executablePath: env.chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  tap.cleanups.push(() => browser.close());
  return browser;
}

/** A context whose pages may use the clipboard, and fail the scenario on
 *  any JS dialog (an alert() would mean injected script ran). */
export async function newContext(browser, opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  ctx.setDefaultTimeout(10000);
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.url });
  ctx.dialogs = [];
  ctx.on('page', (p) => watch(ctx, p));
  return ctx;
}

function watch(ctx, page) {
  page.on('dialog', (d) => {
    ctx.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
}

let seq = 0;
export const uniq = (prefix) => `${prefix}${Date.now().toString(36)}${(seq++).toString(36)}${Math.floor(Math.random() * 1e4)}`;

/* ---- PNG ---- */

const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf) {
  let c = -1;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A real RGB PNG of w×h: a diagonal gradient tinted by seed, so each
 *  file has its own bytes (and its own hash). */
export function png(w = 64, h = 48, seed = 0) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255) / w + seed * 37;
      raw[o + 1] = (y * 255) / h + seed * 91;
      raw[o + 2] = 160 + seed * 13;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/* ---- files into the page ---- */

/** Dispatches a paste of files ([{name, type, b64}]) on the document. */
export async function pasteFiles(page, files) {
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, files);
}

/** Drags files over the page and drops them, as a file manager would.
 *  `big` entries ({name, size}) are made in the page, not shipped over. */
export async function dropFiles(page, files) {
  return page.evaluate(async (files) => {
    const dt = new DataTransfer();
    for (const f of files) {
      const bytes = f.size != null ? new Uint8Array(f.size) : Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.type || '' }));
    }
    const target = document.querySelector('main') || document.body;
    target.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    await new Promise((r) => setTimeout(r, 50)); // let the overlay render
    const overlay = document.querySelector('[data-testid=drop-overlay]')?.classList.contains('show');
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    return { overlay };
  }, files);
}

export const b64 = (buf) => Buffer.from(buf).toString('base64');

/* ---- accounts ---- */

/** Signs in through the API as a browser would, for Node-side requests;
 *  answers the Cookie header to send. */
export async function cookieLogin(username, password) {
  const r = await fetch(`${env.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: env.url },
    body: JSON.stringify({ username, password, session: true }),
  });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${await r.text()}`);
  const set = r.headers.getSetCookie?.() ?? [r.headers.get('set-cookie')];
  return set.map((c) => c.split(';')[0]).join('; ');
}

/** Registers through the API (setup of scenarios that are not about it). */
export async function apiRegister(username, password, invite) {
  const r = await fetch(`${env.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: env.url },
    body: JSON.stringify(invite ? { username, password, invite } : { username, password }),
  });
  if (r.status !== 201) throw new Error(`register ${username}: ${r.status} ${await r.text()}`);
  return r.json();
}

export async function uiLogin(page, username, password) {
  await page.goto(`${env.url}/login`);
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('nav-files').waitFor();
}

export async function config() {
  const r = await fetch(`${env.url}/api/config`);
  if (r.status !== 200) throw new Error(`GET /api/config: ${r.status}`);
  return r.json();
}

export const shot = (page, name) => page.screenshot({ path: path.join(env.shots, `${name}.png`) });

/* ---- files, and the gallery's first load ---- */

export async function upload(cookie, name, bytes, headers = {}) {
  const form = new FormData();
  form.append('file', new Blob([bytes]), name);
  const r = await fetch(`${env.url}/api/uploads`, { method: 'POST', headers: { Cookie: cookie, Origin: env.url, ...headers }, body: form });
  if (r.status !== 201) throw new Error(`upload ${name}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** n small PNGs through the API, 8 at a time. */
export async function uploadMany(cookie, n) {
  const jobs = Array.from({ length: n }, (_, i) => i);
  const worker = async () => {
    for (let i; (i = jobs.shift()) !== undefined; ) await upload(cookie, `shot-${String(i).padStart(3, '0')}.png`, png(160, 100, i));
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** A cold first load of /files in a new context signed in with the
 *  cookie: when the 100th tile was in the document (ms after navigation
 *  start), the layout shift while it loads and scrolls through, and the
 *  pages of the API it asked for.  The caller closes ctx. */
export async function loadGallery(browser, cookie) {
  const ctx = await newContext(browser, { viewport: { width: 1280, height: 860 } });
  await ctx.addCookies(
    cookie.split('; ').map((c) => {
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
  // scroll back through so the lazy images load, then let shifts settle
  for (let y = 0; y < 8; y++) {
    await page.mouse.wheel(0, -600);
    await page.waitForTimeout(80);
  }
  await page.waitForFunction(() => [...document.querySelectorAll('.tile img')].filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete));
  await page.waitForTimeout(300);
  const cls = await page.evaluate(() => window.__cls);
  const shifts = (await page.evaluate(() => window.__shifts)) || [];
  return { ctx, page, t100, cls, shifts, pages };
}
