// An administrator invites someone, who registers from the link; then the
// administrator disables them, and their next step finds them signed out.
import { Tap, env, launch, newContext, uniq, uiLogin, config } from './lib.mjs';

const tap = new Tap('admin');
const browser = await launch(tap);
const adminCtx = await newContext(browser);
const admin = await adminCtx.newPage();
const user = uniq('inv');
const password = 'correct horse battery';

await tap.step('the admin signs in and sees the Admin page', async () => {
  tap.check(env.adminPassword, 'BD_ADMIN_PASSWORD is set');
  await uiLogin(admin, env.adminUser, env.adminPassword);
  await admin.getByTestId('nav-admin').click();
  await admin.getByTestId('admin-user-row').first().waitFor();
});

const link = await tap.step('creates an invite: a code and a link, shown once', async () => {
  await admin.getByTestId('invite-expiry').selectOption({ label: '1 day' });
  await admin.getByTestId('invite-create').click();
  const code = (await admin.getByTestId('invite-code').textContent()).trim();
  const link = (await admin.getByTestId('invite-link').textContent()).trim();
  tap.check(code.length >= 16, `code ${code}`);
  tap.check(link === `${env.url}/register?invite=${encodeURIComponent(code)}`, `link ${link}`);
  await admin.getByTestId('invite-copy-link').click();
  const clip = await admin.evaluate(() => navigator.clipboard.readText());
  tap.check(clip === link, 'the link was copied');
  return link;
});

const userCtx = await newContext(browser);
const page = await userCtx.newPage();

await tap.step('someone else registers from the link, the code filled in', async () => {
  await page.goto(link);
  await page.getByTestId('register-username').fill(user);
  await page.getByTestId('register-password').fill(password);
  const invite = page.getByTestId('register-invite');
  // in invite mode the field is there and filled; in open mode the code
  // travels anyway
  if (await invite.count()) tap.check((await invite.inputValue()) === new URL(link).searchParams.get('invite'), 'code prefilled');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('empty-state').waitFor();
});

const cfg = await config();
await tap.step(`the invite is listed as used by the new user${cfg.registration === 'invite' ? '' : ' # SKIP registration is open'}`, async () => {
  if (cfg.registration !== 'invite') return;
  await admin.reload();
  const row = admin.getByTestId('invite-row').filter({ hasText: user });
  await row.waitFor();
});

// users come 50 a page: on a busy stack the new one is on a later page
async function findUser(name) {
  const row = admin.locator(`[data-testid=admin-user-row][data-username="${name}"]`);
  await admin.getByTestId('admin-user-row').first().waitFor();
  while (!(await row.count())) {
    const more = admin.getByTestId('users-more');
    if (!(await more.count())) throw new Error(`${name} is not listed`);
    const n = await admin.getByTestId('admin-user-row').count();
    await more.click();
    await admin.waitForFunction((n) => document.querySelectorAll('[data-testid=admin-user-row]').length > n, n);
  }
  return row;
}

await tap.step('the admin disables the new user', async () => {
  await admin.reload();
  const row = await findUser(user);
  await row.getByTestId('user-disable').click();
  await row.getByTestId('user-enable').waitFor();
  tap.check((await row.textContent()).includes('Disabled'), 'row says Disabled');
});

await tap.step('the disabled user, on reload, is signed out and told why', async () => {
  await page.reload();
  await page.getByTestId('login-username').waitFor();
  const notice = await page.getByTestId('login-notice').textContent();
  tap.check(/disabled/i.test(notice), `notice: ${notice}`);
  await page.getByTestId('login-username').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  const err = await page.getByTestId('login-error').textContent();
  tap.check(/disabled/i.test(err), `sign-in said: ${err}`);
});

await tap.step('the admin cannot disable themselves, and enables the user again', async () => {
  const self = admin.locator(`[data-testid=admin-user-row][data-username="${env.adminUser}"]`);
  tap.check(await self.getByTestId('user-disable').isDisabled(), 'own Disable button is off');
  const row = admin.locator(`[data-testid=admin-user-row][data-username="${user}"]`);
  await row.getByTestId('user-enable').click();
  await row.getByTestId('user-disable').waitFor();
});

await tap.step('the admin sets a quota of 5 MB, then none', async () => {
  const row = admin.locator(`[data-testid=admin-user-row][data-username="${user}"]`);
  await row.getByTestId('user-quota').click();
  await admin.getByTestId('quota-amount').fill('5');
  await admin.getByTestId('quota-unit').selectOption({ label: 'MB' });
  await admin.getByTestId('quota-save').click();
  await admin.getByTestId('quota-dialog').waitFor({ state: 'detached' });
  tap.check((await row.getByTestId('user-quota').textContent()).trim() === '5.0 MB', `quota ${await row.getByTestId('user-quota').textContent()}`);
  await row.getByTestId('user-quota').click();
  await admin.getByTestId('quota-amount').fill('');
  await admin.getByTestId('quota-save').click();
  await admin.getByTestId('quota-dialog').waitFor({ state: 'detached' });
  tap.check((await row.getByTestId('user-quota').textContent()).trim() === 'None', 'no quota');
});

await tap.step('the admin adds a domain, disables it, and deletes it (confirmed)', async () => {
  const name = `${uniq('i')}.example.net`;
  await admin.getByTestId('domain-name').fill(name);
  await admin.getByTestId('domain-add').click();
  const row = admin.locator(`[data-testid=domain-row][data-name="${name}"]`);
  await row.waitFor();
  await row.getByTestId('domain-toggle').click();
  await row.getByText('Disabled').waitFor();
  await row.getByTestId('domain-delete').click();
  await admin.getByTestId('confirm-ok').click();
  await row.waitFor({ state: 'detached' });
  // seeding twice changes nothing and says so without an error
  await admin.getByTestId('domain-seed').click();
  await admin.getByTestId('toast').filter({ hasText: 'Seeded' }).waitFor();
});

await tap.step('a non-admin at /admin is told it is not allowed', async () => {
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('nav-files').waitFor();
  tap.check((await page.getByTestId('nav-admin').count()) === 0, 'no Admin in the nav');
  await page.goto(`${env.url}/admin`);
  await page.getByTestId('not-allowed').waitFor();
});

await tap.finish();
