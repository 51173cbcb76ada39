// Account page: profile (/api/auth/me), limits (/api/limits), history (/api/jobs).
import {
  initPage, t, onLangChange, api, auth, showError, el, fmtDate, isNotAvailable, showNotAvailable,
  downloadWithAuth, refreshHeader, icon, dataTable,
} from './common.js';

initPage('account');
const $ = (id) => document.getElementById(id);
const data = { me: null, limits: null, limitsErr: null, jobs: null, jobsErr: null };

const tierName = (tier) => (tier ? (['guest', 'free', 'pro', 'studio'].includes(tier) ? t(`tier.${tier}`) : tier) : '—');
const STATUS_BADGE = { done: 'badge-ok', failed: 'badge-bad', queued: 'badge-muted', running: 'badge-warn', expired: 'badge-muted' };

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

function renderAll() {
  if (!data.me) return;
  renderProfile(); renderLimits(); renderHistory();
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
  const [limits, jobs] = await Promise.allSettled([api('/api/limits'), api('/api/jobs')]);
  if (limits.status === 'fulfilled') data.limits = limits.value; else data.limitsErr = limits.reason;
  if (jobs.status === 'fulfilled') data.jobs = Array.isArray(jobs.value) ? jobs.value : (jobs.value?.jobs || []); else data.jobsErr = jobs.reason;
  renderAll();
}

$('logout-btn').addEventListener('click', () => { auth.clear(); location.href = '/'; });
onLangChange(renderAll);
load();
