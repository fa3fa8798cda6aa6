// Reviewer sign-in through the real OpenID provider in headless Chromium
// (Debian's): carol (group dba) signs in, sees the pending request and gives
// the first of the two approvals its rule's policy needs; dave (dba) signs in
// in another browser and gives the second; erin (dev) is not allowed to.
// Run by approver/tests/browser.rs, which then asks the API.
//
// env: APPROVER_URL, APPROVE_ID, CHROMIUM (default /usr/bin/chromium)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = need('APPROVER_URL');
const approveId = need('APPROVE_ID');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const step = (s) => console.log(`signin.mjs: ${s}`);
const problems = [];

async function browser() {
  const dir = mkdtempSync(join(tmpdir(), 'tg-approver-signin-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page, close: async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); } };
}

// Signs in as `who` through the provider's login (and consent) pages.
async function signIn(page, who) {
  await page.goto(`${base}/`);
  await page.locator('#sso-link').click();
  await page.locator('input[name="login"]').fill(who);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  // The consent page, when the provider shows one.
  for (let i = 0; i < 3 && !page.url().startsWith(base); i++) {
    const button = page.locator('button[type="submit"]');
    if (await button.count()) await button.first().click();
    await page.waitForLoadState('load');
  }
  await page.waitForURL(`${base}/**`);
  await page.locator('#who', { hasText: `signed in as ${who}` }).waitFor();
}

const sessions = [];
try {
  step('carol signs in through the identity provider');
  const carol = await browser();
  sessions.push(carol);
  await signIn(carol.page, 'carol');
  const cookies = await carol.context.cookies(base);
  const session = cookies.find((c) => c.name === 'tg_session');
  if (!session) throw new Error(`no session cookie: ${JSON.stringify(cookies)}`);
  if (!session.httpOnly || !session.secure || session.sameSite !== 'Strict') {
    throw new Error(`the session cookie is not HttpOnly, Secure, SameSite=Strict: ${JSON.stringify(session)}`);
  }
  if (await carol.page.evaluate(() => document.cookie.includes('tg_session'))) {
    throw new Error('scripts can read the session cookie');
  }

  step('carol sees the request, the policy and what would be sent');
  const card = carol.page.locator(`.card[data-id="${approveId}"]`);
  await card.waitFor({ state: 'visible' });
  const text = await card.innerText();
  for (const want of ['agent-7', 'POST api.internal/customers/export', '2 approvals needed', 'reviewers from dba',
    'authorization', '[REDACTED]', '[email]']) {
    if (!text.includes(want)) throw new Error(`the card does not show ${JSON.stringify(want)}: ${text}`);
  }

  step('a state-changing call without the CSRF token is refused');
  const forged = await carol.page.evaluate(async (id) => {
    const r = await fetch(`/v1/approvals/${id}/approve`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
    return r.status;
  }, approveId);
  if (forged !== 403) throw new Error(`an approval without CSRF token got ${forged}`);

  step('carol approves: one of two');
  await card.locator('input.reason').fill('carol checked it');
  await card.locator('button.approve-once').click();
  await carol.page.locator('#status', { hasText: `Approval recorded for ${approveId}` }).waitFor();

  step('erin (dev) may not decide');
  const erin = await browser();
  sessions.push(erin);
  await signIn(erin.page, 'erin');
  const erinCard = erin.page.locator(`.card[data-id="${approveId}"]`);
  await erinCard.locator('button.approve-once').click();
  await erin.page.locator('#status', { hasText: 'not in the groups' }).waitFor();

  step('dave (dba) gives the second approval');
  const dave = await browser();
  sessions.push(dave);
  await signIn(dave.page, 'dave');
  const daveCard = dave.page.locator(`.card[data-id="${approveId}"]`);
  await daveCard.locator('.policy', { hasText: '1 so far: carol' }).waitFor();
  await daveCard.locator('button.approve-once').click();
  await daveCard.waitFor({ state: 'detached' });
  await dave.page.locator(`#recent tr[data-id="${approveId}"] td.reviewer`, { hasText: 'carol, dave' }).waitFor();

  step('sign out ends the session');
  await dave.page.locator('#signout').click();
  await dave.page.locator('#login').waitFor({ state: 'visible' });
  await dave.page.reload();
  await dave.page.locator('#login').waitFor({ state: 'visible' });

  if (problems.length) throw new Error(problems.join('\n'));
  step('ok');
} finally {
  for (const s of sessions) await s.close();
}
