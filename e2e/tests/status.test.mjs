// The public status page reads /api/health and shows `ok`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi } from '../lib/server.mjs';
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';

let api, browser;
before(async () => { api = await startApi(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await api?.stop(); });

test('the status page shows ok, the version and the components', async () => {
  // The embedded worker's first heartbeat can come a moment after the API answers; until then
  // health (rightly) shows the workers component as `none`. Compare the page with a settled
  // report, or the page's own later fetch can differ from ours (CI saw `ok` vs `none`).
  const health = await settledHealth(api.base);
  assert.equal(health.status, 'ok', 'a fresh server with an embedded worker is healthy');
  assert.equal(health.components?.workers?.status, 'ok', 'the embedded worker heartbeats within 15 s');
  for (const [vp, size] of Object.entries(VIEWPORTS)) {
    const ctx = await browser.newContext({ viewport: size, locale: 'en-US' });
    const page = await ctx.newPage();
    const res = await page.goto(`${api.base}/status`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-type'], /text\/html/);
    const badge = page.getByTestId('overall-status');
    await page.waitForFunction(() => document.querySelector('[data-testid=overall-status]').textContent === 'ok', null, { timeout: 15_000 });
    assert.equal(await badge.innerText(), 'ok');
    assert.equal(await page.locator('#overall-text').innerText(), 'All systems are working');
    if (health.version) assert.equal(await page.locator('#version').innerText(), health.version);
    for (const name of Object.keys(health.components || {})) {
      const card = page.locator(`[data-component="${name}"] .badge`);
      assert.equal(await card.innerText(), health.components[name].status, `component ${name}`);
    }
    await screenshot(page, 'status', vp);
    await ctx.close();
  }
});

/** /api/health once the embedded worker has heartbeated (or after 15 s, whatever it says then). */
async function settledHealth(base) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const health = await (await fetch(`${base}/api/health`)).json();
    if (health.components?.workers?.status === 'ok' || Date.now() > deadline) return health;
    await new Promise((r) => setTimeout(r, 200));
  }
}
