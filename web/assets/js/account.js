// Account page: profile (/api/auth/me), limits (/api/limits), payments (/api/payments),
// history (/api/jobs).
import {
  initPage, t, onLangChange, api, auth, showError, el, fmtDate, isNotAvailable, showNotAvailable,
  downloadWithAuth, refreshHeader, icon, dataTable, tierName, loadPlans, planName, fmtMoney,
  paymentStatusText,
} from './common.js';

initPage('account');
const $ = (id) => document.getElementById(id);
const data = { me: null, limits: null, limitsErr: null, jobs: null, jobsErr: null, payments: null, paymentsErr: null, plans: null };

const STATUS_BADGE = { done: 'badge-ok', failed: 'badge-bad', queued: 'badge-muted', running: 'badge-warn', expired: 'badge-muted' };
const PAYMENT_BADGE = { succeeded: 'badge-ok', pending: 'badge-warn', waiting_for_capture: 'badge-warn', canceled: 'badge-muted', refunded: 'badge-muted', failed: 'badge-bad' };

function renderProfile() {
  const me = data.me;
  const rows = [['account.email', me.email], ['account.tier', tierName(me.tier)], ['account.tierUntil', me.tier_expires_at ? fmtDate(me.tier_expires_at) : '—'], ['account.tokens', me.tokens ?? 0]];
  $('profile').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, t(k)), el('dd', {}, String(v))]));
}

function renderLimits() {
  const box = $('limits');
  if (data.limitsErr) { if (isNotAvailable(data.limitsErr)) showNotAvailable(box); else showError(box, data.limitsErr); return; }
  const l = data.limits;
  if (!l) return;
  const pct = l.daily_limit ? Math.min(100, ((l.used_today || 0) / l.daily_limit) * 100) : 0;
  box.replaceChildren(
    el('dl', { class: 'kv' },
      el('dt', {}, t('account.tier')), el('dd', {}, tierName(l.tier)),
      el('dt', {}, t('account.used')), el('dd', {}, `${l.used_today ?? 0} / ${l.daily_limit ?? '∞'}`),
      el('dt', {}, t('account.remaining')), el('dd', { 'data-testid': 'remaining' }, String(l.remaining ?? '—')),
      el('dt', {}, t('account.tokens')), el('dd', {}, String(l.tokens ?? 0)),
      el('dt', {}, t('account.resets')), el('dd', {}, fmtDate(l.reset_at))),
    el('progress', { max: '100', value: String(pct), 'aria-label': t('account.used'), class: 'limits-bar' }));
}

function jobRow(j) {
  const expired = j.status === 'expired' || (j.expires_at && new Date(j.expires_at) < new Date());
  const status = expired && j.status === 'done' ? 'expired' : j.status;
  let action = '—';
  if (j.status === 'done' && !expired) {
    const href = `/api/master/result/${encodeURIComponent(j.job_id)}`;
    action = el('a', { class: 'btn btn-small', href, download: '' }, t('account.download'));
    action.addEventListener('click', async (e) => {
      e.preventDefault();
      try { await downloadWithAuth(href, `${j.original_filename || 'track'}_mastered.${j.out_format || 'wav'}`); }
      catch (err) { showError($('account-error'), err); }
    });
  } else if (expired) action = el('span', { class: 'muted small' }, t('account.expired'));
  return el('tr', {},
    el('td', {}, el('a', { href: `/?job=${encodeURIComponent(j.job_id)}` }, j.original_filename || j.job_id)),
    el('td', {}, ['standard', 'edm', 'hiphop', 'classical', 'podcast', 'lofi', 'house_basic', 'dry_vocal'].includes(j.style) ? t(`style.${j.style}`) : (j.style || '—')),
    el('td', {}, (j.out_format || '').toUpperCase() || '—'),
    el('td', {}, el('span', { class: `badge ${STATUS_BADGE[status] || 'badge-muted'}` }, t(`status.${status}`) !== `status.${status}` ? t(`status.${status}`) : status)),
    el('td', {}, fmtDate(j.created_at)),
    el('td', {}, fmtDate(j.expires_at)),
    el('td', {}, action));
}

function renderHistory() {
  const box = $('history');
  if (data.jobsErr) { if (isNotAvailable(data.jobsErr)) showNotAvailable(box); else showError(box, data.jobsErr); return; }
  const jobs = data.jobs || [];
  if (!jobs.length) {
    box.replaceChildren(el('div', { class: 'empty-state' }, el('span', { class: 'icon' }, icon('headphones', 36)), el('p', {}, t('account.historyEmpty')), el('a', { class: 'btn btn-primary', href: '/' }, t('master.button'))));
    return;
  }
  const cols = ['file', 'style', 'format', 'status', 'created', 'expires', 'action'];
  box.replaceChildren(dataTable(cols.map((c) => t(`account.col.${c}`)), jobs.map(jobRow)));
}

function paymentRow(p) {
  const status = p.status === 'cancelled' ? 'canceled' : p.status;
  const badges = [el('span', { class: `badge ${PAYMENT_BADGE[status] || 'badge-muted'}`, 'data-status': status }, paymentStatusText(status))];
  if (p.demo) badges.push(' ', el('span', { class: 'badge badge-muted' }, t('account.demoPayment')));
  const link = el('a', { href: `/payment/return?payment_id=${encodeURIComponent(p.payment_id)}` },
    status === 'pending' || status === 'waiting_for_capture' ? t('account.paymentCheck') : t('account.paymentOpen'));
  return el('tr', { 'data-payment-id': p.payment_id },
    el('td', {}, fmtDate(p.created_at)),
    el('td', {}, planName(data.plans, p.plan)),
    el('td', {}, fmtMoney(p.amount, p.currency || 'RUB')),
    el('td', {}, badges),
    el('td', {}, link));
}

function renderPayments() {
  const box = $('payments');
  if (data.paymentsErr) {
    // No payments route on this server: hide the section rather than show an empty frame.
    if (isNotAvailable(data.paymentsErr)) { $('payments-card').hidden = true; return; }
    showError(box, data.paymentsErr);
    return;
  }
  const list = data.payments || [];
  if (!list.length) {
    box.replaceChildren(el('p', { class: 'muted' }, t('account.paymentsEmpty'), ' ', el('a', { href: '/pricing' }, t('account.upgrade'))));
    return;
  }
  const cols = ['date', 'plan', 'amount', 'payStatus', 'payment'];
  box.replaceChildren(dataTable(cols.map((c) => t(`account.col.${c}`)), list.map(paymentRow)));
}

function renderAll() {
  if (!data.me) return;
  renderProfile(); renderLimits(); renderPayments(); renderHistory();
}

async function load() {
  if (!auth.token()) { $('need-login').hidden = false; return; }
  try {
    data.me = await api('/api/auth/me');
    auth.update(data.me);
    refreshHeader('account');
  } catch (err) {
    if (err.status === 401) { refreshHeader('account'); $('need-login').hidden = false; return; }
    if (isNotAvailable(err)) { showNotAvailable($('account-error')); $('account-error').className = 'card'; $('account-error').hidden = false; return; }
    showError($('account-error'), err);
    return;
  }
  $('logout-btn').hidden = false;
  $('account-cards').hidden = false;
  $('history-card').hidden = false;
  $('payments-card').hidden = false;
  const [limits, jobs, payments, plans] = await Promise.allSettled([api('/api/limits'), api('/api/jobs'), api('/api/payments'), loadPlans()]);
  if (limits.status === 'fulfilled') data.limits = limits.value; else data.limitsErr = limits.reason;
  if (jobs.status === 'fulfilled') data.jobs = Array.isArray(jobs.value) ? jobs.value : (jobs.value?.jobs || []); else data.jobsErr = jobs.reason;
  if (payments.status === 'fulfilled') data.payments = Array.isArray(payments.value) ? payments.value : (payments.value?.payments || []); else data.paymentsErr = payments.reason;
  if (plans.status === 'fulfilled') data.plans = plans.value.plans;
  renderAll();
}

$('logout-btn').addEventListener('click', () => { auth.clear(); location.href = '/'; });
onLangChange(renderAll);
load();
