// Drives the reviewer page in headless Chromium (Debian's, never a downloaded
// browser): enters the token, checks what a reviewer sees, approves one request
// and denies another. Run by approver/tests/browser.rs, which then asks the API.
//
// env: APPROVER_URL, REVIEWER_TOKEN, APPROVE_ID, DENY_ID, CHROMIUM (default /usr/bin/chromium)
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
const token = need('REVIEWER_TOKEN');
const approveId = need('APPROVE_ID');
const denyId = need('DENY_ID');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const userDataDir = mkdtempSync(join(tmpdir(), 'tg-approver-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout: 30000,
});
const problems = [];
const step = (s) => console.log(`review.mjs: ${s}`);
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`); });

  step('open the page, enter the token');
  await page.goto(`${base}/#${approveId}`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', token);
  await page.click('#save-token');

  const card = page.locator(`.card[data-id="${approveId}"]`);
  await card.waitFor({ state: 'visible' });
  step('check what the reviewer sees');
  const text = await card.innerText();
  for (const want of ['agent-7', 'rule card-export', 'POST api.internal/customers/export', '[email]', 'ago']) {
    if (!text.includes(want)) throw new Error(`the card does not show ${JSON.stringify(want)}: ${text}`);
  }
  // The preview is agent-controlled: shown as text, never run.
  const preview = await card.locator('pre.preview').innerText();
  if (!preview.includes('<img src=x onerror=')) throw new Error(`preview not shown as text: ${preview}`);
  if ((await card.locator('img').count()) !== 0) throw new Error('the preview became HTML');
  if (await page.evaluate(() => window.__xss === 1)) throw new Error('the preview ran script');
  if (!(await card.evaluate((c) => c.classList.contains('highlight')))) {
    throw new Error('the card named in the URL is not highlighted');
  }

  step('reload: the token is kept');
  await page.reload();
  await card.waitFor({ state: 'visible' });
  if (await page.locator('#login').isVisible()) throw new Error('the token was not kept');

  step('approve once, with a reason');
  await card.locator('input.reason').fill('checked by the browser test');
  await card.locator('button.approve-once').click();
  await card.waitFor({ state: 'detached' });

  step('deny the other one');
  const other = page.locator(`.card[data-id="${denyId}"]`);
  await other.locator('input.reason').fill('not this one');
  await other.locator('button.deny').click();
  await other.waitFor({ state: 'detached' });

  step('the decisions show under recent decisions');
  await page.locator(`#recent tr[data-id="${approveId}"] td.decision`, { hasText: 'approved (once)' }).waitFor();
  await page.locator(`#recent tr[data-id="${denyId}"] td.decision`, { hasText: 'denied' }).waitFor();

  if (problems.length) throw new Error(problems.join('\n'));
  step('ok');
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
