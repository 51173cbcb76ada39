// Russian and English: the switcher changes the texts, is remembered, and the default follows the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi } from '../lib/server.mjs';
import { launchBrowser, VIEWPORTS } from '../lib/browser.mjs';

let api, browser;
before(async () => { api = await startApi(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await api?.stop(); });

test('switching the language changes the texts and is remembered', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  const page = await ctx.newPage();
  await page.goto(`${api.base}/`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  assert.equal(await page.locator('h1').innerText(), 'Master your track in one click');
  await page.locator('.style-card').first().waitFor();
  const enStyle = await page.locator('.style-card[data-style=standard] .style-name').innerText();

  await page.getByLabel('Language').selectOption('ru');
  assert.equal(await page.locator('html').getAttribute('lang'), 'ru');
  assert.equal(await page.locator('h1').innerText(), 'Мастеринг трека в один клик');
  assert.equal(await page.getByRole('link', { name: 'Тарифы' }).count(), 1, 'navigation translated');
  assert.notEqual(await page.locator('.style-card[data-style=standard] .style-name').innerText(), enStyle, 'style cards re-rendered');
  assert.match(await page.getByRole('button', { name: /Master/ }).innerText(), /Magic Master/, 'the master button keeps its name');

  await page.goto(`${api.base}/status`);
  assert.equal(await page.locator('h1').innerText(), 'Состояние сервиса', 'choice remembered on another page');
  await page.getByLabel('Язык').selectOption('en');
  assert.equal(await page.locator('h1').innerText(), 'Service status');
  await ctx.close();
});

test('the default language follows the browser', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.phone, locale: 'ru-RU' });
  const page = await ctx.newPage();
  await page.goto(`${api.base}/login`);
  assert.equal(await page.locator('html').getAttribute('lang'), 'ru');
  assert.equal(await page.locator('h1').innerText(), 'Вход');
  assert.equal(await page.getByLabel('Электронная почта').count(), 1, 'form fields labelled in Russian');
  await ctx.close();
});

test('an unknown address shows the 404 page in the browser\'s language, with a way home', async () => {
  for (const [locale, title, home] of [['en-US', 'Page not found', 'Go to the home page'], ['ru-RU', 'Страница не найдена', 'На главную']]) {
    const ctx = await browser.newContext({ viewport: VIEWPORTS.phone, locale });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(`${api.base}/no/such/page`);
    assert.equal(res.status(), 404);
    assert.match(res.headers()['content-type'], /text\/html/);
    assert.equal(await page.locator('h1').innerText(), title, locale);
    assert.equal(await page.title(), `${title} — Magic Master`, locale);
    assert.equal(await page.locator('.site-header').count(), 1, 'the shared header');
    await page.getByRole('link', { name: home }).click();
    await page.waitForURL(`${api.base}/`);
    assert.deepEqual(errors, [], 'no script errors');
    await ctx.close();
  }
});
