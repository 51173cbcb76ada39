// Payments in a real browser against the real API binary and a YooKassa stand-in
// (lib/mock-yookassa.mjs): plans, the pay button → YooKassa's confirmation_url → pay or cancel
// there → the webhook → back on /payment/return, which says how it ended; the account page shows
// what was bought. Plus demo mode (YooKassa unset) and a guest who is sent to log in first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi } from '../lib/server.mjs';
import { startMockYooKassa } from '../lib/mock-yookassa.mjs';
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';

const SHOP = { id: 'e2e-shop-506', key: 'test_e2e_secret_key_0123456789' };
const PASSWORD = 'e2e-payer-password-1';
const DAY_MS = 86_400_000;

let mock, live, demo, browser, livePlans, demoPlans;

before(async () => {
  mock = await startMockYooKassa({ shopId: SHOP.id, secretKey: SHOP.key });
  [live, demo] = await Promise.all([
    startApi((port) => ({
      MAGIC_MASTER_YOOKASSA_SHOP_ID: SHOP.id,
      MAGIC_MASTER_YOOKASSA_SECRET_KEY: SHOP.key,
      MAGIC_MASTER_YOOKASSA_API_URL: mock.apiUrl,
      MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST: '127.0.0.1',
      MAGIC_MASTER_YOOKASSA_RETURN_URL: `http://127.0.0.1:${port}/payment/return`,
    })),
    startApi(),
  ]);
  mock.webhookUrl = `${live.base}/api/payments/webhook`;
  browser = await launchBrowser();
  livePlans = await getJson(live, '/api/payments/plans');
  demoPlans = await getJson(demo, '/api/payments/plans');
});
after(async () => { await browser?.close(); await live?.stop(); await demo?.stop(); await mock?.stop(); });

async function getJson(api, path, token) {
  const r = await fetch(`${api.base}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await r.text();
  assert.equal(r.status, 200, `GET ${path} → ${r.status} ${text}\nAPI log tail:\n${api.log().slice(-2000)}`);
  return JSON.parse(text);
}

const plan = (plans, id) => {
  const p = plans.plans.find((x) => x.id === id);
  assert.ok(p, `plan ${id} is on sale: ${JSON.stringify(plans.plans.map((x) => x.id))}`);
  return p;
};

/** Registers a new account on /login?mode=register and lands on `next`. Returns the page's token. */
async function register(page, api, email, next = '/pricing') {
  await page.goto(`${api.base}/login?mode=register&next=${encodeURIComponent(next)}`);
  return submitRegistration(page, email, next);
}

async function submitRegistration(page, email, next) {
  await page.locator('#email').fill(email);
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#auth-submit').click();
  await page.waitForURL((u) => `${u.pathname}${u.search}` === next);
  const token = await page.evaluate(() => localStorage.getItem('mm_token'));
  assert.ok(token, 'registration stored a token');
  return token;
}

/** Waits until /payment/return has settled on `phase` (its text carries data-phase). */
async function returnPhase(page, phase) {
  const text = page.locator(`#pay-text[data-phase="${phase}"]`);
  try {
    await text.waitFor({ timeout: 20_000 });
  } catch (e) {
    const now = await page.locator('#pay-text').getAttribute('data-phase');
    const err = await page.locator('#pay-error').innerText().catch(() => '');
    throw new Error(`return page shows "${now}" instead of "${phase}" (${err})`, { cause: e });
  }
  return (await text.innerText()).trim();
}

/** Checks the cards on /pricing against the plans answer, in the page's language. */
async function checkPlanCards(page, plans, lang) {
  const cards = page.locator('article.plan');
  await cards.first().waitFor();
  assert.equal(await cards.count(), plans.plans.length, 'one card per plan');
  for (const p of plans.plans) {
    const card = page.locator(`article.plan[data-plan-id="${p.id}"]`);
    const name = (lang === 'ru' && p.name_ru) || p.name;
    assert.equal((await card.locator('h2').innerText()).trim(), name);
    const text = await card.innerText();
    const digits = text.replace(/[\s\u00a0\u202f,]/g, '');
    assert.ok(digits.includes(String(Number(p.price))), `${p.id}: price ${p.price} shown in "${text}"`);
    const features = lang === 'ru' && p.features_ru?.length ? p.features_ru : p.features;
    for (const f of features || []) assert.ok(text.includes(f), `${p.id}: feature "${f}" shown`);
    assert.equal(await card.locator(`button[data-plan="${p.id}"]`).count(), 1, `${p.id}: a pay button`);
  }
}

test('live: a new user pays for Pro on the YooKassa page and the account shows the Pro plan', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  const token = await register(page, live, 'payer-pro@e2e.example');

  assert.equal(livePlans.demo, false, 'YooKassa is configured: not demo mode');
  await checkPlanCards(page, livePlans, 'en');
  assert.equal(await page.locator('#pricing-demo').isVisible(), false, 'no demo notice in live mode');
  await screenshot(page, 'pricing-live', 'desktop');

  const pro = plan(livePlans, 'pro_month');
  const pay = page.getByRole('button', { name: new RegExp(`^Pay .* — ${pro.name}$`) });
  await pay.click();
  await page.waitForURL((u) => u.href.startsWith(`${mock.base}/checkout/`));

  // What the API asked YooKassa for.
  const creates = mock.requests.filter((r) => r.method === 'POST' && r.path === '/v3/payments');
  assert.equal(creates.length, 1, 'one create request');
  const [create] = creates;
  assert.equal(create.auth, `Basic ${Buffer.from(`${SHOP.id}:${SHOP.key}`).toString('base64')}`);
  assert.deepEqual(create.body.amount, { value: pro.price, currency: pro.currency });
  assert.equal(create.body.capture, true);
  assert.equal(create.body.confirmation.type, 'redirect');
  assert.equal(create.body.metadata.plan, 'pro_month');
  const ours = create.body.metadata.payment_id;
  assert.match(ours, /^[0-9a-zA-Z_-]{16,}$/, 'our payment id is long and random');
  assert.equal(create.idempotenceKey, ours, 'Idempotence-Key is our payment id');
  assert.equal(create.body.confirmation.return_url, `${live.base}/payment/return?payment_id=${ours}`);
  const provider = [...mock.payments.values()].find((x) => x.metadata.payment_id === ours);
  assert.ok(provider, 'YooKassa holds the payment');
  assert.equal(page.url(), provider.confirmation.confirmation_url, 'the browser is at YooKassa\'s confirmation_url');
  assert.equal((await getJson(live, `/api/payments/${ours}`, token)).status, 'pending');
  await screenshot(page, 'yookassa-checkout', 'desktop');

  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await page.waitForURL((u) => u.href.startsWith(`${live.base}/payment/return`));
  assert.match(await returnPhase(page, 'succeeded'), /Payment received/);
  assert.equal(mock.notifications.at(-1).event, 'payment.succeeded');
  assert.equal(mock.notifications.at(-1).status, 200, `webhook answer: ${JSON.stringify(mock.notifications.at(-1))}`);
  assert.match(await page.locator('#pay-balance').innerText(), new RegExp(`Your plan: ${pro.name}`));
  assert.equal(await page.locator('#pay-demo').isVisible(), false);
  await screenshot(page, 'payment-return-succeeded', 'desktop');

  const paid = await getJson(live, `/api/payments/${ours}`, token);
  assert.equal(paid.status, 'succeeded');
  assert.equal(paid.credited, true);
  assert.equal(paid.demo, false);
  assert.equal(paid.plan, 'pro_month');
  assert.equal(paid.amount, pro.price);
  const me = await getJson(live, '/api/auth/me', token);
  assert.equal(me.tier, 'pro');
  const until = Date.parse(me.tier_expires_at);
  assert.ok(Math.abs(until - (Date.now() + pro.duration_days * DAY_MS)) < 10 * 60_000,
    `Pro runs ${pro.duration_days} days from now (±10 min): ${me.tier_expires_at}`);

  // YooKassa sends notifications more than once: three more at the same time credit nothing.
  const again = await Promise.all([1, 2, 3].map(() => mock.notify(provider.id, 'payment.succeeded')));
  assert.deepEqual(again.map((n) => n.status), [200, 200, 200], JSON.stringify(again));
  assert.equal((await getJson(live, '/api/auth/me', token)).tier_expires_at, me.tier_expires_at, 'credited exactly once');

  await page.goto(`${live.base}/account`);
  const row = page.locator(`tr[data-payment-id="${ours}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(`${pro.name}[\\s\\S]*paid`));
  assert.match(await page.locator('#profile').innerText(), new RegExp(`Plan\\s+${pro.name}`));
  await screenshot(page, 'account-paid', 'desktop');
  assert.deepEqual(errors, []);
  await ctx.close();

  // A refund afterwards: the return page for that payment says so.
  const refunded = await mock.refund(provider.id);
  assert.equal(refunded.status, 200, `refund webhook answer: ${JSON.stringify(refunded)}`);
  assert.equal((await getJson(live, `/api/payments/${ours}`, token)).status, 'refunded');
  assert.equal((await getJson(live, '/api/auth/me', token)).tier, 'free', 'the refund took the Pro plan back');
  const ctx2 = await browser.newContext({ viewport: VIEWPORTS.phone, locale: 'en-US' });
  const page2 = await ctx2.newPage();
  await page2.goto(`${live.base}/login`);
  await page2.evaluate((tk) => localStorage.setItem('mm_token', tk), token);
  await page2.goto(`${live.base}/payment/return?payment_id=${ours}`);
  assert.match(await returnPhase(page2, 'refunded'), /refunded/);
  await screenshot(page2, 'payment-return-refunded', 'phone');
  await ctx2.close();
});

test('live: the payer cancels on the YooKassa page; a YooKassa failure is told in plain words', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.phone, locale: 'en-US' });
  const page = await ctx.newPage();
  const token = await register(page, live, 'payer-cancel@e2e.example');
  const tokens10 = plan(livePlans, 'tokens_10');
  await page.locator('button[data-plan="tokens_10"]').click();
  await page.waitForURL((u) => u.href.startsWith(`${mock.base}/checkout/`));
  const provider = mock.payments.get(page.url().split('/checkout/')[1]);
  assert.ok(provider, 'the checkout page is one of YooKassa\'s payments');
  assert.deepEqual(provider.amount, { value: tokens10.price, currency: tokens10.currency });
  const ours = provider.metadata.payment_id;

  // Back on our site without paying (as with the browser's Back button): still waiting, and a
  // link leads back to YooKassa's page.
  await page.goto(`${live.base}/payment/return?payment_id=${ours}`);
  assert.match(await returnPhase(page, 'pending'), /still being processed/);
  const cont = page.getByRole('link', { name: 'Continue to payment' });
  assert.equal(await cont.getAttribute('href'), provider.confirmation.confirmation_url);
  await cont.click();
  await page.waitForURL(provider.confirmation.confirmation_url);

  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await page.waitForURL((u) => u.href.startsWith(`${live.base}/payment/return`));
  assert.match(await returnPhase(page, 'canceled'), /cancelled\. No money was taken/);
  assert.equal(mock.notifications.at(-1).event, 'payment.canceled');
  assert.equal(mock.notifications.at(-1).status, 200, `webhook answer: ${JSON.stringify(mock.notifications.at(-1))}`);
  assert.equal(await page.locator('#pay-retry').isVisible(), true, 'a way back to the plans');
  await screenshot(page, 'payment-return-canceled', 'phone');

  const p = await getJson(live, `/api/payments/${ours}`, token);
  assert.equal(p.status, 'canceled');
  assert.equal(p.credited, false);
  const me = await getJson(live, '/api/auth/me', token);
  assert.equal(me.tokens, 0, 'nothing credited');
  assert.equal(me.tier, 'free');

  // YooKassa answers an error: the payer reads what happened, and that no money was taken.
  mock.failCreate = { status: 500, code: 'internal_server_error', description: 'Internal server error' };
  try {
    await page.goto(`${live.base}/pricing`);
    await page.locator('button[data-plan="tokens_10"]').click();
    const msg = page.locator('#pricing-msg.alert-error');
    await msg.waitFor();
    assert.match(await msg.innerText(), /payment service \(YooKassa\) didn’t answer[\s\S]*No money was taken/);
    assert.equal(new URL(page.url()).pathname, '/pricing', 'the payer stays on the pricing page');
    await screenshot(page, 'pricing-provider-error', 'phone');
  } finally {
    mock.failCreate = null;
  }

  await page.goto(`${live.base}/account`);
  const rows = page.locator('#payments tr[data-payment-id]');
  await rows.first().waitFor();
  const statuses = await page.locator('#payments tr[data-payment-id] .badge[data-status]').evaluateAll((b) => b.map((x) => x.dataset.status));
  assert.deepEqual(statuses, ['failed', 'canceled'], 'newest first: the failed attempt, then the cancelled one');
  assert.match(await page.locator(`tr[data-payment-id="${ours}"]`).innerText(), /cancelled/);
  await ctx.close();
});

test('demo mode: the page says payments are not real and 10 tokens arrive at once (Russian)', async () => {
  assert.equal(demoPlans.demo, true, 'YooKassa unset: demo mode');
  const ctx = await browser.newContext({ viewport: VIEWPORTS.phone, locale: 'ru-RU' });
  const page = await ctx.newPage();
  const token = await register(page, demo, 'payer-demo@e2e.example');
  const notice = page.locator('#pricing-demo');
  await notice.waitFor({ state: 'visible' });
  assert.match(await notice.innerText(), /Демо-режим[\s\S]*деньги не списываются/);
  await checkPlanCards(page, demoPlans, 'ru');
  await screenshot(page, 'pricing-demo-ru', 'phone');

  const requestsBefore = mock.requests.length;
  await page.locator('button[data-plan="tokens_10"]').click();
  await page.waitForURL((u) => u.href.startsWith(`${demo.base}/payment/return`));
  assert.match(await returnPhase(page, 'succeeded'), /Оплата прошла[\s\S]*10/);
  assert.equal(await page.locator('#pay-demo').isVisible(), true, 'the return page says it was a demo payment');
  assert.equal(mock.requests.length, requestsBefore, 'demo mode never calls YooKassa');
  await screenshot(page, 'payment-return-demo-ru', 'phone');

  const ours = new URL(page.url()).searchParams.get('payment_id');
  const p = await getJson(demo, `/api/payments/${ours}`, token);
  assert.deepEqual([p.status, p.credited, p.demo], ['succeeded', true, true]);
  assert.equal((await getJson(demo, '/api/auth/me', token)).tokens, 10);

  await page.goto(`${demo.base}/account`);
  await page.locator(`tr[data-payment-id="${ours}"]`).waitFor();
  assert.match(await page.locator('#profile').innerText(), /Токены\s+10/);
  assert.match(await page.locator(`tr[data-payment-id="${ours}"]`).innerText(), /оплачен[\s\S]*демо/);
  await ctx.close();
});

test('a guest who presses pay is sent to log in and comes back to the plan they picked', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  const page = await ctx.newPage();
  await page.goto(`${demo.base}/pricing`);
  await page.locator('button[data-plan="studio_month"]').click();
  await page.waitForURL((u) => u.pathname === '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/pricing?plan=studio_month');
  assert.match(await page.locator('#auth-reason').innerText(), /Log in or create an account to pay/);
  assert.equal((await fetch(`${demo.base}/api/payments`)).status, 401, 'the payments list needs a login');
  await screenshot(page, 'login-to-pay', 'desktop');

  // No account yet: switch to registration on the same page; the way back is kept.
  await page.getByRole('button', { name: /Create one/ }).click();
  const studio = plan(demoPlans, 'studio_month');
  const token = await submitRegistration(page, 'payer-guest@e2e.example', '/pricing?plan=studio_month');
  const chosen = page.locator('article.plan-chosen');
  await chosen.waitFor();
  assert.equal(await chosen.getAttribute('data-plan-id'), 'studio_month');
  assert.match(await page.locator('#pricing-msg').innerText(), new RegExp(`You picked ${studio.name}`));
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.plan), 'studio_month', 'its pay button has the focus');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/payment/return');
  await returnPhase(page, 'succeeded');
  assert.equal((await getJson(demo, '/api/auth/me', token)).tier, 'studio');
  await ctx.close();
});
