// Admin panel: dashboard, users, jobs (retry), settings and the "Backup DB" download.
// Route shapes assumed here are written down in web/README.md.
import {
  initPage, t, onLangChange, api, auth, el, fmtDate, showError, showMessage, clearMessage,
  isNotAvailable, showNotAvailable, downloadWithAuth, dataTable, refreshHeader,
} from './common.js';

initPage('admin');
const $ = (id) => document.getElementById(id);
const TABS = ['dashboard', 'users', 'jobs', 'settings'];
const TIERS = ['free', 'pro', 'studio'];
const loaded = {};
let current = 'dashboard';
const cache = {};

/** Renders an error or the "not available yet" state into a panel body. */
function fail(box, err) { if (isNotAvailable(err)) showNotAvailable(box); else { box.replaceChildren(el('div')); showError(box.firstChild, err); } }

function kvTable(obj) {
  const rows = [];
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, name);
      else rows.push([name, Array.isArray(v) ? JSON.stringify(v) : (v === null ? '—' : String(v))]);
    }
  };
  walk(obj, '');
  return el('dl', { class: 'kv' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

// ---------------------------------------------------------------- dashboard
function statTiles(obj) {
  const tiles = [], rest = {};
  for (const [k, v] of Object.entries(obj || {})) {
    if (typeof v === 'number') tiles.push(el('div', { class: 'stat' }, el('div', { class: 'num' }, v.toLocaleString()), el('div', { class: 'lbl' }, k.replace(/_/g, ' '))));
    else rest[k] = v;
  }
  return [tiles.length ? el('div', { class: 'stats-grid' }, tiles) : null, Object.keys(rest).length ? kvTable(rest) : null].filter(Boolean);
}

async function loadDashboard() {
  const [stats, health] = await Promise.allSettled([api('/api/admin/stats'), api('/api/health')]);
  if (stats.status === 'fulfilled') $('stats').replaceChildren(...statTiles(stats.value)); else fail($('stats'), stats.reason);
  if (health.status === 'fulfilled') {
    const c = health.value.components || {};
    $('queue').replaceChildren(c.queue ? kvTable(c.queue) : kvTable(health.value.jobs || {}));
    $('workers').replaceChildren(c.workers ? kvTable(c.workers) : el('p', { class: 'muted' }, t('statusPage.notReported')));
  } else { fail($('queue'), health.reason); $('workers').replaceChildren(); }
}

// ---------------------------------------------------------------- users
async function userAction(path, body, method = 'POST') {
  const msg = $('admin-msg');
  clearMessage(msg);
  try { await api(path, { method, body }); showMessage(msg, t('admin.saved'), 'ok'); await loadUsers(); }
  catch (err) { showError(msg, err); }
}

function userRow(u) {
  const id = encodeURIComponent(u.id);
  const tierSel = el('select', { 'aria-label': t('admin.tierLabel', { email: u.email }) }, TIERS.map((x) => el('option', { value: x, selected: x === u.tier }, t(`tier.${x}`))));
  const tokens = el('input', { type: 'number', min: '1', step: '1', value: '10', 'aria-label': t('admin.grantLabel', { email: u.email }) });
  const blocked = !!(u.is_blocked ?? u.blocked);
  return el('tr', {},
    el('td', {}, u.email, u.is_admin ? el('span', { class: 'badge badge-warn ml-04' }, 'admin') : null),
    el('td', {}, t(`tier.${u.tier}`) !== `tier.${u.tier}` ? t(`tier.${u.tier}`) : (u.tier || '—'), u.tier_expires_at ? el('div', { class: 'small muted' }, fmtDate(u.tier_expires_at)) : null),
    el('td', {}, String(u.tokens ?? 0)),
    el('td', {}, el('span', { class: `badge ${blocked ? 'badge-bad' : 'badge-ok'}` }, t(blocked ? 'admin.blocked' : 'admin.active'))),
    el('td', {}, fmtDate(u.created_at)),
    el('td', {}, el('div', { class: 'inline-form' },
      tierSel, el('button', { type: 'button', class: 'btn btn-small', onclick: () => userAction(`/api/admin/users/${id}`, { tier: tierSel.value }, 'PATCH') }, t('admin.setTier')),
      tokens, el('button', { type: 'button', class: 'btn btn-small', onclick: () => { const n = parseInt(tokens.value, 10); if (n > 0) userAction(`/api/admin/users/${id}/tokens`, { amount: n }); } }, t('admin.grant')),
      el('button', { type: 'button', class: 'btn btn-small btn-danger', onclick: () => userAction(`/api/admin/users/${id}`, { is_blocked: !blocked }, 'PATCH') }, t(blocked ? 'admin.unblock' : 'admin.block')))));
}

function renderUsers() {
  const box = $('users');
  if (cache.usersErr) { fail(box, cache.usersErr); return; }
  const users = cache.users || [];
  if (!users.length) { box.replaceChildren(el('div', { class: 'empty-state' }, t('admin.noUsers'))); return; }
  const cols = ['email', 'tier', 'tokens', 'state', 'created', 'actions'];
  box.replaceChildren(dataTable(cols.map((c) => t(`admin.col.${c}`)), users.map(userRow)));
}

async function loadUsers() {
  const q = $('user-q').value.trim();
  try {
    const r = await api(`/api/admin/users?limit=100${q ? `&q=${encodeURIComponent(q)}` : ''}`);
    cache.users = Array.isArray(r) ? r : (r?.users || []); cache.usersErr = null;
  } catch (err) { cache.usersErr = err; }
  renderUsers();
}

// ---------------------------------------------------------------- jobs
function jobRow(j) {
  const retry = j.status === 'failed'
    ? el('button', { type: 'button', class: 'btn btn-small', onclick: () => retryJob(j.job_id) }, t('admin.retry')) : '';
  return el('tr', {},
    el('td', {}, el('div', {}, el('span', { class: 'mono small' }, String(j.job_id).slice(0, 12)), el('div', { class: 'small muted' }, j.original_filename || ''))),
    el('td', {}, j.user_email || j.email || (j.user_id ? `#${j.user_id}` : t('tier.guest'))),
    el('td', {}, el('span', { class: `badge ${{ done: 'badge-ok', failed: 'badge-bad', running: 'badge-warn' }[j.status] || 'badge-muted'}` }, t(`status.${j.status}`) !== `status.${j.status}` ? t(`status.${j.status}`) : j.status)),
    el('td', {}, `${j.style || ''} ${j.out_format ? `· ${j.out_format}` : ''}`),
    el('td', {}, String(j.attempts ?? '—')),
    el('td', { class: 'small' }, j.error || ''),
    el('td', {}, fmtDate(j.created_at)),
    el('td', {}, retry));
}

async function retryJob(id) {
  const msg = $('admin-msg');
  try { await api(`/api/admin/jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' }); showMessage(msg, t('admin.retried', { id: String(id).slice(0, 12) }), 'ok'); loadJobs(); }
  catch (err) { showError(msg, err); }
}

function renderJobs() {
  const box = $('jobs');
  if (cache.jobsErr) { fail(box, cache.jobsErr); return; }
  const jobs = cache.jobs || [];
  if (!jobs.length) { box.replaceChildren(el('div', { class: 'empty-state' }, t('admin.noJobs'))); return; }
  const heads = ['admin.col.job', 'admin.col.user', 'account.col.status', 'account.col.style', 'admin.col.attempts', 'admin.col.error', 'account.col.created', 'admin.col.actions'];
  box.replaceChildren(dataTable(heads.map((k) => t(k)), jobs.map(jobRow)));
}

async function loadJobs() {
  const s = $('job-state').value;
  try {
    const r = await api(`/api/admin/jobs?limit=100${s ? `&status=${s}` : ''}`);
    cache.jobs = Array.isArray(r) ? r : (r?.jobs || []); cache.jobsErr = null;
  } catch (err) { cache.jobsErr = err; }
  renderJobs();
}

// ---------------------------------------------------------------- settings
async function loadSettings() {
  try {
    const r = await api('/api/admin/settings');
    $('settings').replaceChildren(el('div', { class: 'card' }, kvTable(r?.settings || r || {})));
  } catch (err) { fail($('settings'), err); }
}

// ---------------------------------------------------------------- tabs
const LOADERS = { dashboard: loadDashboard, users: loadUsers, jobs: loadJobs, settings: loadSettings };

function showTab(name, focus = false) {
  current = name;
  for (const tab of TABS) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute('aria-selected', String(on));
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(`panel-${tab}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  if (!loaded[name]) { loaded[name] = true; LOADERS[name](); }
}
TABS.forEach((name) => $(`tab-${name}`).addEventListener('click', () => showTab(name)));
document.querySelector('[role=tablist]').addEventListener('keydown', (e) => {
  const d = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
  if (!d) return;
  e.preventDefault();
  showTab(TABS[(TABS.indexOf(current) + d + TABS.length) % TABS.length], true);
});
$('dash-refresh').addEventListener('click', loadDashboard);
$('jobs-refresh').addEventListener('click', loadJobs);
$('job-state').addEventListener('change', loadJobs);
$('user-search').addEventListener('submit', (e) => { e.preventDefault(); loadUsers(); });

// ---------------------------------------------------------------- backup
$('backup-btn').addEventListener('click', async () => {
  const btn = $('backup-btn'), msg = $('admin-msg');
  btn.disabled = true;
  clearMessage(msg);
  try {
    const name = await downloadWithAuth('/api/admin/backup/db', 'magic_master_backup.sqlite3');
    showMessage(msg, t('admin.backupDone', { name }), 'ok');
  } catch (err) { showError(msg, err); }
  finally { btn.disabled = false; }
});

// ---------------------------------------------------------------- start
async function start() {
  if (!auth.token()) { $('need-admin').hidden = false; return; }
  try {
    const me = await api('/api/auth/me');
    auth.update(me);
    refreshHeader('admin');
    if (!me.is_admin) { $('need-admin').hidden = false; return; }
  } catch (err) {
    if (isNotAvailable(err)) { const m = $('admin-msg'); showNotAvailable(m); m.className = 'card'; m.hidden = false; return; }
    $('need-admin').hidden = false;
    if (err.status !== 401) showError($('admin-msg'), err);
    return;
  }
  $('backup-btn').hidden = false;
  $('admin-app').hidden = false;
  showTab('dashboard');
}

onLangChange(() => { if (cache.users || cache.usersErr) renderUsers(); if (cache.jobs || cache.jobsErr) renderJobs(); });
start();
