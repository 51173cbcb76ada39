// /payment/return: polls GET /api/payments/{id} until the payment has succeeded or been cancelled.
import { initPage, t, onLangChange, api, showError, sleep, icon } from './common.js';

initPage('pricing');
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const paymentId = params.get('payment_id') || params.get('paymentId') || params.get('id') || localStorage.getItem('mm_last_payment');
let phase = 'checking';

const VIEW = {
  checking: ['clock', 'pay.checking'],
  succeeded: ['check', 'pay.succeeded'],
  canceled: ['cross', 'pay.canceled'],
  pending: ['clock', 'pay.pending'],
  slow: ['clock', 'pay.slow'],
  unknown: ['question', 'pay.unknownId'],
};

function render() {
  const [name, key] = VIEW[phase];
  $('pay-icon').replaceChildren(icon(name, 56));
  $('pay-icon').className = `pay-icon pay-${phase}`;
  $('pay-text').textContent = t(key);
  $('pay-text').dataset.phase = phase;
  $('pay-id').textContent = paymentId ? `${t('pay.id')}: ${paymentId}` : '';
}

async function poll() {
  if (!paymentId) { phase = 'unknown'; render(); return; }
  const started = Date.now();
  for (;;) {
    try {
      const p = await api(`/api/payments/${encodeURIComponent(paymentId)}`);
      const s = p.status;
      if (s === 'succeeded') { phase = 'succeeded'; localStorage.removeItem('mm_last_payment'); render(); return; }
      if (s === 'canceled' || s === 'cancelled') { phase = 'canceled'; localStorage.removeItem('mm_last_payment'); render(); return; }
      phase = Date.now() - started > 120_000 ? 'slow' : 'pending';
      render();
      if (phase === 'slow') return;
    } catch (err) {
      showError($('pay-error'), err);
      if (err.status && err.status < 500) { phase = 'unknown'; render(); return; }
    }
    await sleep(3000);
  }
}

onLangChange(render);
render();
poll();
