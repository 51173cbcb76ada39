// DEVELOPMENT ONLY: screenshots of every page against a running server (mock or real).
//   node e2e/dev/screens.mjs http://127.0.0.1:8765 [prefix] [lang]
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';
import { makeTestWav } from '../lib/wav.mjs';

const base = process.argv[2] || 'http://127.0.0.1:8765';
const prefix = process.argv[3] || 'dev';
const lang = process.argv[4] || 'en';
const browser = await launchBrowser();
const wav = makeTestWav({ seconds: 6 });
for (const [vp, size] of Object.entries(VIEWPORTS)) {
  const ctx = await browser.newContext({ viewport: size, locale: lang === 'ru' ? 'ru-RU' : 'en-US' });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`[${vp}] console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[${vp}] pageerror: ${e.message}`));
  await page.goto(`${base}/`);
  await page.setInputFiles('input[type=file]', { name: 'my_mix.wav', mimeType: 'audio/wav', buffer: wav });
  await page.getByRole('button', { name: /Master/ }).click();
  await page.getByRole('link', { name: /Download|Скачать/ }).waitFor({ timeout: 30000 });
  await page.waitForSelector('#ab-player:not([hidden])', { timeout: 30000 }).catch(() => {});
  await screenshot(page, `${prefix}-master`, vp);
  await page.evaluate(() => { localStorage.setItem('mm_token', 'mock.jwt.token'); localStorage.setItem('mm_user', JSON.stringify({ email: 'admin@example.com', is_admin: true })); });
  for (const name of ['status', 'pricing', 'account', 'admin', 'payment/return?payment_id=pay_123']) {
    await page.goto(`${base}/${name}`);
    await page.waitForTimeout(700);
    await screenshot(page, `${prefix}-${name.split(/[/?]/).join('-').replace(/-payment_id.*/, '')}`, vp);
  }
  await page.evaluate(() => { localStorage.removeItem('mm_token'); localStorage.removeItem('mm_user'); });
  await page.goto(`${base}/login`);
  await screenshot(page, `${prefix}-login`, vp);
  await ctx.close();
}
await browser.close();
