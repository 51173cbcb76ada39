// A small stand-in for YooKassa (API v3, JSON) for the browser tests of payments.
//
//   POST /v3/payments            create (Basic auth shop_id:secret_key, Idempotence-Key required;
//                                the same key with the same body answers the same payment)
//   GET  /v3/payments/{id}       the payment as it is now
//   GET  /v3/refunds/{id}        a refund made with `refund()`
//   GET  /checkout/{id}          the payer's page (the payment's confirmation_url): "Pay" and "Cancel"
//   POST /checkout/{id}/pay      → succeeded; POSTs the notification to the webhook; 303 to return_url
//   POST /checkout/{id}/cancel   → canceled;  POSTs the notification to the webhook; 303 to return_url
//
// Everything it was asked and everything it notified is recorded for the tests to check.
import http from 'node:http';
import { randomUUID } from 'node:crypto';

const ERROR_ID = () => randomUUID();

/** YooKassa-style payment id: a UUID whose third group starts with 5 ("2ce4a7fb-000f-5000-9000-…"). */
function paymentId() {
  const u = randomUUID().split('-');
  return `${u[0]}-000f-5000-9000-${u[4]}`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function apiError(res, status, code, description, parameter) {
  sendJson(res, status, { type: 'error', id: ERROR_ID(), code, description, ...(parameter ? { parameter } : {}) });
}

/** What a create body must hold (as YooKassa checks it); returns [parameter, description] or null. */
function invalidCreate(body) {
  if (!body || typeof body !== 'object') return ['', 'Request body is not a JSON object'];
  const a = body.amount;
  if (!a || typeof a.value !== 'string' || !/^\d+(\.\d{1,2})?$/.test(a.value) || Number(a.value) <= 0) return ['amount.value', 'Invalid amount value'];
  if (typeof a.currency !== 'string' || !/^[A-Z]{3}$/.test(a.currency)) return ['amount.currency', 'Invalid currency'];
  const c = body.confirmation;
  if (!c || c.type !== 'redirect') return ['confirmation.type', 'Only redirect confirmation is supported by this mock'];
  if (typeof c.return_url !== 'string' || !/^https?:\/\//.test(c.return_url)) return ['confirmation.return_url', 'Invalid return_url'];
  if (body.description !== undefined && (typeof body.description !== 'string' || body.description.length > 128)) return ['description', 'Description must be a string of at most 128 characters'];
  if (body.metadata !== undefined && (typeof body.metadata !== 'object' || Array.isArray(body.metadata))) return ['metadata', 'metadata must be an object'];
  return null;
}

/**
 * Starts the mock on a free port of 127.0.0.1.
 * `webhookUrl` may be set later (`mock.webhookUrl = …`) once the API's port is known.
 * Set `mock.failCreate = {status, code, description}` to make the next creates fail that way.
 */
export async function startMockYooKassa({ shopId = 'test-shop-1', secretKey = 'test_secret_key_1', webhookUrl = null } = {}) {
  const payments = new Map(); // id → payment object (YooKassa's shape)
  const refunds = new Map();
  const byKey = new Map(); // Idempotence-Key → {body, id}
  const requests = []; // {method, path, auth, idempotenceKey, body}
  const notifications = []; // {event, paymentId, status (HTTP answer of the webhook), answer, error}
  const expectedAuth = `Basic ${Buffer.from(`${shopId}:${secretKey}`).toString('base64')}`;
  let base = '';

  const mock = {
    shopId, secretKey, webhookUrl, payments, refunds, requests, notifications, failCreate: null,
    get base() { return base; },
    get apiUrl() { return `${base}/v3`; },
    /** Sends the notification for a payment's current state again (YooKassa retries, duplicates). */
    notify: (id, event) => notify(event, payments.get(id)),
    /** Refunds a succeeded payment in full and notifies `refund.succeeded`; returns the webhook's answer. */
    refund,
    stop: () => new Promise((ok) => { server.closeAllConnections?.(); server.close(() => ok()); }),
  };

  async function notify(event, object) {
    const entry = { event, paymentId: object?.payment_id || object?.id, status: 0, answer: '', error: null };
    notifications.push(entry);
    if (!mock.webhookUrl) { entry.error = 'no webhook URL set'; return entry; }
    try {
      const r = await fetch(mock.webhookUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'notification', event, object }),
      });
      entry.status = r.status;
      entry.answer = await r.text();
    } catch (e) {
      entry.error = String(e.message || e);
    }
    return entry;
  }

  async function refund(id) {
    const p = payments.get(id);
    if (!p || p.status !== 'succeeded') throw new Error(`payment ${id} is not succeeded (${p?.status})`);
    const r = {
      id: paymentId().replace('-000f-5000-', '-0015-5000-'), payment_id: id, status: 'succeeded',
      created_at: new Date().toISOString(), amount: { ...p.amount },
    };
    refunds.set(r.id, r);
    p.refunded_amount = { ...p.amount };
    p.refundable = false;
    return notify('refund.succeeded', r);
  }

  function checkAuth(req, res) {
    if (req.headers.authorization === expectedAuth) return true;
    apiError(res, 401, 'invalid_credentials', 'Basic authentication failed: wrong shopId or secret key', 'Authorization');
    return false;
  }

  function createPayment(body) {
    const id = paymentId();
    const p = {
      id, status: 'pending', paid: false,
      amount: { value: body.amount.value, currency: body.amount.currency },
      description: body.description,
      recipient: { account_id: shopId, gateway_id: '100500' },
      created_at: new Date().toISOString(),
      confirmation: { type: 'redirect', return_url: body.confirmation.return_url, confirmation_url: `${base}/checkout/${id}` },
      test: true, refundable: false, metadata: body.metadata || {},
      capture: body.capture === true,
    };
    payments.set(id, p);
    return p;
  }

  function publicView(p) {
    const { capture, ...rest } = p; // `capture` was a request field, not part of YooKassa's payment
    return rest;
  }

  function checkoutPage(res, p) {
    const final = p.status !== 'pending';
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>YooKassa (test) — checkout</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:30rem;margin:2rem auto;padding:0 1rem}button{font-size:1.1rem;padding:.6rem 1.4rem;margin-right:.6rem}</style></head>
<body><h1>YooKassa test checkout</h1>
<p id="shop">Shop ${escapeHtml(shopId)}</p>
<p id="description">${escapeHtml(p.description || '')}</p>
<p id="amount">${escapeHtml(p.amount.value)} ${escapeHtml(p.amount.currency)}</p>
<p id="status">Status: ${escapeHtml(p.status)}</p>
${final ? `<p><a href="${escapeHtml(p.confirmation.return_url)}">Return to the shop</a></p>` : `
<form method="post" action="/checkout/${p.id}/pay"><button type="submit" id="pay">Pay</button></form>
<form method="post" action="/checkout/${p.id}/cancel"><button type="submit" id="cancel">Cancel</button></form>`}
</body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  }

  async function finishCheckout(res, p, action) {
    if (p.status === 'pending') {
      if (action === 'pay') {
        Object.assign(p, {
          status: 'succeeded', paid: true, captured_at: new Date().toISOString(),
          income_amount: { value: (Number(p.amount.value) * 0.965).toFixed(2), currency: p.amount.currency },
          payment_method: { type: 'bank_card', id: p.id, saved: false, title: 'Bank card *4444', card: { first6: '555555', last4: '4444', expiry_year: '2030', expiry_month: '12', card_type: 'MasterCard' } },
          refundable: true, refunded_amount: { value: '0.00', currency: p.amount.currency },
          authorization_details: { rrn: '603668680243', auth_code: '000000' },
        });
        if (!p.capture) p.status = 'waiting_for_capture';
      } else {
        Object.assign(p, { status: 'canceled', cancellation_details: { party: 'yoo_money', reason: 'expired_on_confirmation' } });
      }
      const event = p.status === 'canceled' ? 'payment.canceled' : p.status === 'succeeded' ? 'payment.succeeded' : 'payment.waiting_for_capture';
      await notify(event, publicView(p));
    }
    res.writeHead(303, { Location: p.confirmation.return_url });
    res.end();
  }

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://mock');
      const path = url.pathname;
      const text = req.method === 'POST' ? await readBody(req) : '';
      let body = null;
      if (path.startsWith('/v3/')) {
        try { body = text ? JSON.parse(text) : null; } catch { body = undefined; }
        requests.push({ method: req.method, path, auth: req.headers.authorization || null, idempotenceKey: req.headers['idempotence-key'] || null, body });
      }
      let m;
      if (req.method === 'POST' && path === '/v3/payments') {
        if (!checkAuth(req, res)) return;
        const key = req.headers['idempotence-key'];
        if (!key || key.length > 64) return apiError(res, 400, 'invalid_request', 'Idempotence-Key header is missing or longer than 64 characters', 'Idempotence-Key');
        if (body === undefined) return apiError(res, 400, 'invalid_request', 'Request body is not valid JSON');
        const bad = invalidCreate(body);
        if (bad) return apiError(res, 400, 'invalid_request', bad[1], bad[0] || undefined);
        const seen = byKey.get(key);
        if (seen) {
          if (seen.body !== JSON.stringify(body)) return apiError(res, 400, 'invalid_request', 'Idempotence key duplicated with another request body', 'Idempotence-Key');
          return sendJson(res, 200, publicView(payments.get(seen.id)));
        }
        if (mock.failCreate) {
          const f = mock.failCreate;
          return apiError(res, f.status || 500, f.code || 'internal_server_error', f.description || 'Internal server error');
        }
        const p = createPayment(body);
        byKey.set(key, { body: JSON.stringify(body), id: p.id });
        return sendJson(res, 200, publicView(p));
      }
      if (req.method === 'GET' && (m = path.match(/^\/v3\/payments\/([\w-]+)$/))) {
        if (!checkAuth(req, res)) return;
        const p = payments.get(m[1]);
        return p ? sendJson(res, 200, publicView(p)) : apiError(res, 404, 'not_found', 'Payment not found or forbidden', 'payment_id');
      }
      if (req.method === 'GET' && (m = path.match(/^\/v3\/refunds\/([\w-]+)$/))) {
        if (!checkAuth(req, res)) return;
        const r = refunds.get(m[1]);
        return r ? sendJson(res, 200, r) : apiError(res, 404, 'not_found', 'Refund not found or forbidden', 'refund_id');
      }
      if ((m = path.match(/^\/checkout\/([\w-]+)(?:\/(pay|cancel))?$/))) {
        const p = payments.get(m[1]);
        if (!p) { res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('no such payment'); return; }
        if (req.method === 'GET' && !m[2]) return checkoutPage(res, p);
        if (req.method === 'POST' && m[2]) return finishCheckout(res, p, m[2]);
      }
      if (path.startsWith('/v3/')) return apiError(res, 404, 'not_found', `no such route in the mock: ${req.method} ${path}`);
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    } catch (e) {
      if (!res.headersSent) apiError(res, 500, 'internal_server_error', String(e.message || e));
    }
  });
  await new Promise((ok, fail) => { server.once('error', fail); server.listen(0, '127.0.0.1', ok); });
  base = `http://127.0.0.1:${server.address().port}`;
  return mock;
}
