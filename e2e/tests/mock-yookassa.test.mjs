// The YooKassa stand-in used by payments.test.mjs behaves like the parts of YooKassa API v3 the
// service relies on (checked in node, no browser, no API binary).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMockYooKassa } from '../lib/mock-yookassa.mjs';

let mock, hook, received = [];
const auth = (id, key) => `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}`;
const createBody = (value = '490.00') => ({
  amount: { value, currency: 'RUB' }, capture: true,
  confirmation: { type: 'redirect', return_url: 'http://127.0.0.1:9/payment/return?payment_id=ours1' },
  description: 'Magic Master: Pro', metadata: { payment_id: 'ours1', user_id: '7', plan: 'pro_month' },
});

before(async () => {
  // A webhook receiver standing in for the API.
  hook = http.createServer(async (req, res) => {
    let text = ''; for await (const c of req) text += c;
    received.push({ path: req.url, body: JSON.parse(text) });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise((ok) => hook.listen(0, '127.0.0.1', ok));
  mock = await startMockYooKassa({ shopId: 'shop-42', secretKey: 'sk_42', webhookUrl: `http://127.0.0.1:${hook.address().port}/api/payments/webhook` });
});
after(async () => { await mock?.stop(); hook?.close(); });

async function create(body, { key = 'key-1', authz = auth('shop-42', 'sk_42') } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (authz) headers.Authorization = authz;
  if (key) headers['Idempotence-Key'] = key;
  const r = await fetch(`${mock.apiUrl}/payments`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

test('create checks Basic auth and the Idempotence-Key, and the same key answers the same payment', async () => {
  assert.equal((await create(createBody(), { authz: null })).status, 401);
  assert.equal((await create(createBody(), { authz: auth('shop-42', 'wrong') })).status, 401);
  const noKey = await create(createBody(), { key: null });
  assert.equal(noKey.status, 400);
  assert.equal(noKey.body.parameter, 'Idempotence-Key');
  assert.equal((await create({ ...createBody(), amount: { value: 'x', currency: 'RUB' } }, { key: 'bad' })).status, 400);

  const first = await create(createBody(), { key: 'key-1' });
  assert.equal(first.status, 200);
  assert.equal(first.body.status, 'pending');
  assert.deepEqual(first.body.amount, { value: '490.00', currency: 'RUB' });
  assert.equal(first.body.confirmation.confirmation_url, `${mock.base}/checkout/${first.body.id}`);
  assert.deepEqual(first.body.metadata, createBody().metadata);
  const again = await create(createBody(), { key: 'key-1' });
  assert.equal(again.body.id, first.body.id, 'same key, same payment');
  assert.equal((await create(createBody('491.00'), { key: 'key-1' })).status, 400, 'same key with another body is refused');
  const other = await create(createBody(), { key: 'key-2' });
  assert.notEqual(other.body.id, first.body.id);

  const get = await fetch(`${mock.apiUrl}/payments/${first.body.id}`, { headers: { Authorization: auth('shop-42', 'sk_42') } });
  assert.equal(get.status, 200);
  assert.equal((await get.json()).id, first.body.id);
  assert.equal((await fetch(`${mock.apiUrl}/payments/${first.body.id}`)).status, 401);
  assert.equal((await fetch(`${mock.apiUrl}/payments/nope`, { headers: { Authorization: auth('shop-42', 'sk_42') } })).status, 404);
});

test('the checkout page pays or cancels, notifies the webhook, then sends the payer to return_url', async () => {
  for (const [action, event, status] of [['pay', 'payment.succeeded', 'succeeded'], ['cancel', 'payment.canceled', 'canceled']]) {
    const { body: p } = await create(createBody(), { key: `checkout-${action}` });
    const page = await fetch(p.confirmation.confirmation_url);
    const html = await page.text();
    assert.match(html, /<button[^>]*>Pay<\/button>/);
    assert.match(html, /<button[^>]*>Cancel<\/button>/);
    received = [];
    const r = await fetch(`${mock.base}/checkout/${p.id}/${action}`, { method: 'POST', redirect: 'manual' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), createBody().confirmation.return_url);
    assert.equal(received.length, 1, 'one notification');
    assert.equal(received[0].path, '/api/payments/webhook');
    assert.equal(received[0].body.type, 'notification');
    assert.equal(received[0].body.event, event);
    assert.equal(received[0].body.object.id, p.id);
    assert.equal(received[0].body.object.status, status);
    assert.equal(received[0].body.object.metadata.payment_id, 'ours1');
    assert.equal(mock.notifications.at(-1).status, 200);
    const now = await (await fetch(`${mock.apiUrl}/payments/${p.id}`, { headers: { Authorization: auth('shop-42', 'sk_42') } })).json();
    assert.equal(now.status, status);
    assert.equal(now.paid, action === 'pay');
  }
});

test('a full refund notifies refund.succeeded with the payment id', async () => {
  const { body: p } = await create(createBody(), { key: 'refund-1' });
  await fetch(`${mock.base}/checkout/${p.id}/pay`, { method: 'POST', redirect: 'manual' });
  received = [];
  const entry = await mock.refund(p.id);
  assert.equal(entry.status, 200);
  assert.equal(received[0].body.event, 'refund.succeeded');
  assert.equal(received[0].body.object.payment_id, p.id);
  const now = await (await fetch(`${mock.apiUrl}/payments/${p.id}`, { headers: { Authorization: auth('shop-42', 'sk_42') } })).json();
  assert.deepEqual(now.refunded_amount, p.amount);
});
