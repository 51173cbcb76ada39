// Every page at desktop and phone width: served, no script errors, labelled controls, no sideways
// scrolling on a phone, keyboard-usable style cards; screenshots saved for people to look at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, ADMIN } from '../lib/server.mjs';
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';

let api, browser, adminToken = null;
before(async () => {
  api = await startApi();
  browser = await launchBrowser();
  const r = await fetch(`${api.base}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) });
  if (r.ok) adminToken = await r.json();
});
after(async () => { await browser?.close(); await api?.stop(); });

const PAGES = [
  ['master', '/'], ['login', '/login'], ['register', '/login?mode=register'], ['pricing', '/pricing'],
  ['payment-return', '/payment/return?payment_id=e2e-unknown'], ['status', '/status'],
  ['account', '/account', 'user'], ['admin', '/admin', 'user'],
];

/** Controls without an accessible name (label, aria-label, aria-labelledby or text). */
function unlabelled() {
  const bad = [];
  for (const c of document.querySelectorAll('input, select, textarea, button')) {
    if (c.type === 'hidden' || c.closest('[hidden]')) continue;
    const byLabel = c.labels && c.labels.length > 0;
    const name = c.getAttribute('aria-label') || c.getAttribute('aria-labelledby') || (c.tagName === 'BUTTON' && c.textContent.trim());
    if (!byLabel && !name) bad.push(c.outerHTML.slice(0, 120));
  }
  return bad;
}

const RUNS = [['en', 'desktop'], ['en', 'phone'], ['ru', 'phone']];
for (const [lang, vp] of RUNS) {
  const size = VIEWPORTS[vp];
  test(`every page renders cleanly at ${size.width}×${size.height} (${lang})`, async () => {
    const ctx = await browser.newContext({ viewport: size, locale: lang === 'ru' ? 'ru-RU' : 'en-US' });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
    for (const [name, path, who] of PAGES) {
      if (who === 'user' && adminToken) {
        await page.evaluate((tk) => { localStorage.setItem('mm_token', tk.access_token); localStorage.setItem('mm_user', JSON.stringify(tk)); }, adminToken);
      }
      const res = await page.goto(`${api.base}${path}`);
      assert.equal(res.status(), 200, `${path} is served`);
      await page.waitForLoadState('networkidle');
      await page.waitForTimeout(300);
      assert.ok((await page.locator('.site-header').count()) === 1, `${path}: header rendered by the shared module`);
      assert.deepEqual(await page.evaluate(unlabelled), [], `${path}: every control has a name`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${path}: no sideways scrolling (${overflow}px too wide)`);
      assert.equal(await page.locator('html').getAttribute('lang'), lang);
      await screenshot(page, lang === 'en' ? name : `${name}-${lang}`, vp);
    }
    assert.deepEqual(errors, [], 'no uncaught script errors');
    await ctx.close();
  });
}

test('style cards work from the keyboard', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  const page = await ctx.newPage();
  await page.goto(`${api.base}/`);
  const first = page.locator('.style-card[aria-checked=true]');
  await first.waitFor();
  await first.focus();
  const start = await first.getAttribute('data-style');
  await page.keyboard.press('ArrowRight');
  const next = await page.evaluate(() => document.activeElement.dataset.style);
  assert.notEqual(next, start, 'arrow key moves to the next style');
  assert.equal(await page.locator(`.style-card[data-style="${next}"]`).getAttribute('aria-checked'), 'true');
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('Tab'); // leave the group, come back and pick with Space and Enter
  await page.keyboard.press('Shift+Tab');
  const focused = page.locator('.style-card:focus');
  assert.equal(await focused.getAttribute('data-style'), start);
  const otherId = await page.locator('.style-card[aria-checked=false]').nth(2).getAttribute('data-style');
  const other = page.locator(`.style-card[data-style="${otherId}"]`);
  await other.focus();
  await page.keyboard.press('Space');
  assert.equal(await other.getAttribute('aria-checked'), 'true', 'Space selects a card');
  const anotherId = await page.locator('.style-card[aria-checked=false]').first().getAttribute('data-style');
  const another = page.locator(`.style-card[data-style="${anotherId}"]`);
  await another.focus();
  await page.keyboard.press('Enter');
  assert.equal(await another.getAttribute('aria-checked'), 'true', 'Enter selects a card');
  const outline = await another.evaluate((e) => getComputedStyle(e).outlineStyle);
  assert.notEqual(outline, 'none', 'focused card shows a focus ring');
  await ctx.close();
});
