// /payment/return — where YooKassa sends the payer back. Reads ?payment_id= (or the id saved
// before the redirect), polls GET /api/payments/{id} every 3 s for up to 2 minutes and says how
// the payment ended: paid (and what was added to the account), cancelled, refunded or failed.
import {
  initPage, t, onLangChange, api, auth, showError, clearMessage, sleep, icon, loadPlans, planName,
  fmtMoney, fmtDate, tierName,
} from './common.js';

initPage('pricing');
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const paymentId = params.get('payment_id') || params.get('paymentId') || localStorage.getItem('mm_last_payment');
const POLL_MS = 3000;
const GIVE_UP_MS = 120_000;

let phase = 'checking';
let payment = null, plans = null, me = null;

// phase → [icon, text key]
const VIEW = {
  checking: ['clock', 'pay.checking'],
  pending: ['clock', 'pay.pending'],
  crediting: ['check', 'pay.crediting'],
  succeeded: ['check', 'pay.succeeded'],
  canceled: ['cross', 'pay.canceled'],
  refunded: ['cross', 'pay.refunded'],
  failed: ['cross', 'pay.failed'],
  slow: ['clock', 'pay.slow'],
  unknown: ['question', 'pay.unknownId'],
  login: ['question', 'pay.loginToSee'],
  notfound: ['question', 'pay.notFound'],
};
const FINAL = new Set(['succeeded', 'canceled', 'refunded', 'failed']);

function successText() {
  const plan = plans?.find((p) => p.id === payment?.plan);
  if (plan?.tokens) return t('pay.succeededTokens', { n: plan.tokens });
  if (plan?.tier) return t('pay.succeededTier', { tier: tierName(plan.tier) });
  return t('pay.succeeded');
}

function balanceText() {
  if (!me) return '';
  const parts = [me.tier_expires_at && me.tier !== 'free'
    ? t('pricing.currentUntil', { tier: tierName(me.tier), date: fmtDate(me.tier_expires_at) })
    : t('pricing.current', { tier: tierName(me.tier) })];
  parts.push(t('pricing.currentTokens', { n: me.tokens ?? 0 }));
  return parts.join(' · ');
}

function render() {
  const [name, key] = VIEW[phase];
  $('pay-icon').replaceChildren(icon(name, 56));
  $('pay-icon').className = `pay-icon pay-${phase}`;
  $('pay-text').textContent = phase === 'succeeded' ? successText() : t(key);
  $('pay-text').dataset.phase = phase;
  $('pay-id').textContent = paymentId ? `${t('pay.id')}: ${paymentId}` : '';
  const summary = $('pay-summary');
  if (payment) {
    const when = payment.created_at ? ` · ${fmtDate(payment.created_at)}` : '';
    summary.textContent = `${planName(plans, payment.plan)} · ${fmtMoney(payment.amount, payment.currency || 'RUB')}${when}`;
    summary.hidden = false;
  } else summary.hidden = true;
  $('pay-demo').hidden = !(payment?.demo);
  const balance = phase === 'succeeded' ? balanceText() : '';
  $('pay-balance').textContent = balance;
  $('pay-balance').hidden = !balance;
  $('pay-login').hidden = phase !== 'login';
  $('pay-login').href = `/login?next=${encodeURIComponent(`/payment/return?payment_id=${paymentId || ''}`)}`;
  $('pay-retry').hidden = !['canceled', 'failed', 'refunded', 'unknown', 'notfound'].includes(phase);
  $('pay-retry').href = payment?.plan && phase !== 'refunded' ? `/pricing?plan=${encodeURIComponent(payment.plan)}` : '/pricing';
  $('pay-account').hidden = phase === 'login';
  // Back here without paying (e.g. the browser's Back button): YooKassa's page is still open.
  const cont = ['pending', 'slow'].includes(phase) && /^https?:\/\//.test(payment?.confirmation_url || '') ? payment.confirmation_url : null;
  $('pay-continue').hidden = !cont;
  if (cont) $('pay-continue').href = cont;
}

/** Phase for a payment answer: a paid payment counts once it is credited to the account. */
function phaseOf(p) {
  const s = p.status === 'cancelled' ? 'canceled' : p.status;
  if (s === 'succeeded') return p.credited === false ? 'crediting' : 'succeeded';
  if (FINAL.has(s)) return s;
  return 'pending'; // pending, waiting_for_capture, anything new
}

async function finish() {
  localStorage.removeItem('mm_last_payment');
  if (phase === 'succeeded') {
    try { me = await api('/api/auth/me'); auth.update(me); } catch { /* the plan text is enough */ }
  }
  render();
}

async function poll() {
  if (!paymentId) { phase = 'unknown'; render(); return; }
  if (!auth.token()) { phase = 'login'; render(); return; }
  loadPlans().then((c) => { plans = c.plans; render(); }).catch(() => { /* names fall back to ids */ });
  const started = Date.now();
  for (;;) {
    try {
      payment = await api(`/api/payments/${encodeURIComponent(paymentId)}`);
      clearMessage($('pay-error'));
      phase = phaseOf(payment);
      if (FINAL.has(phase)) { await finish(); return; }
    } catch (err) {
      if (err.status === 401) { phase = 'login'; render(); return; }
      if (err.status === 404) { phase = 'notfound'; localStorage.removeItem('mm_last_payment'); render(); return; }
      showError($('pay-error'), err);
      if (err.status && err.status < 500 && err.status !== 429) { phase = 'unknown'; render(); return; }
    }
    if (Date.now() - started > GIVE_UP_MS) { phase = 'slow'; render(); return; }
    render();
    await sleep(POLL_MS);
  }
}

$('pay-text').removeAttribute('data-i18n'); // rendered here, in the current language
onLangChange(render);
render();
poll();
