// Public status page: reads /api/health every 10 s and shows every component.
import { initPage, t, onLangChange, ApiError, friendlyError, el, fmtDate, fmtDuration, fmtNum } from './common.js';

initPage('status');
const $ = (id) => document.getElementById(id);
const COMPONENTS = ['database', 'disk', 'ffmpeg', 'queue', 'workers'];
const GOOD = ['ok'];
const WARN = ['degraded', 'low', 'backlog', 'missing', 'unknown'];
let last = null, lastError = null, lastAt = null;

const tone = (s) => (GOOD.includes(s) ? 'ok' : WARN.includes(s) ? 'warn' : s ? 'bad' : 'muted');
const badgeClass = (s) => ({ ok: 'badge-ok', warn: 'badge-warn', bad: 'badge-bad', muted: 'badge-muted' })[tone(s)];

function fieldValue(k, v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString() : fmtNum(v, 1);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function componentCard(name, c) {
  const status = c?.status;
  const dl = el('dl', { class: 'kv' });
  if (c) {
    for (const [k, v] of Object.entries(c)) {
      if (k === 'status' || v === '' || v === null) continue;
      dl.append(el('dt', {}, TEXT_KEYS.has(`field.${k}`) ? t(`field.${k}`) : k), el('dd', {}, fieldValue(k, v)));
    }
  }
  return el('article', { class: 'card component', 'data-component': name },
    el('h3', {}, el('span', {}, t(`comp.${name}`)),
      el('span', { class: `badge ${badgeClass(status)}` }, status || t('statusPage.notReported'))),
    dl.children.length ? dl : null);
}
const TEXT_KEYS = new Set(['field.free_mb', 'field.detail', 'field.pending', 'field.running', 'field.queued',
  'field.failed_last_hour', 'field.oldest_pending_sec', 'field.alive', 'field.total_cached']);

function render() {
  const dot = $('overall-dot'), badge = $('overall-badge'), text = $('overall-text');
  if (lastError && !last) {
    dot.className = 'status-dot bad';
    badge.className = 'badge badge-bad'; badge.textContent = 'down';
    text.textContent = t('statusPage.down');
  }
  const errBox = $('status-error');
  if (lastError) {
    const { title, detail } = friendlyError(lastError);
    errBox.hidden = false;
    errBox.textContent = detail ? `${title} (${detail})` : title;
  } else errBox.hidden = true;
  if (!last) return;
  const h = last;
  const s = h.status || 'unknown';
  dot.className = `status-dot ${tone(s)}`;
  badge.className = `badge ${badgeClass(s)}`;
  badge.textContent = s;
  text.textContent = t(s === 'ok' ? 'statusPage.ok' : 'statusPage.degraded');
  $('version').textContent = h.version || '—';
  if (h.uptime_since) {
    $('uptime').textContent = fmtDuration((Date.now() - new Date(h.uptime_since).getTime()) / 1000);
    $('since').textContent = t('statusPage.since', { t: fmtDate(h.uptime_since) });
  } else { $('uptime').textContent = '—'; $('since').textContent = ''; }
  const jobs = h.jobs || {};
  $('jobs-num').textContent = jobs.running !== undefined ? String(jobs.running) : '—';
  $('jobs-detail').textContent = [['running', jobs.running], ['queued', jobs.queued], ['total_cached', jobs.total_cached]]
    .filter(([, v]) => v !== undefined).map(([k, v]) => `${t(`field.${k}`)}: ${v}`).join(' · ');
  const comps = h.components || {};
  const names = [...COMPONENTS, ...Object.keys(comps).filter((k) => !COMPONENTS.includes(k))];
  $('components').replaceChildren(...names.map((n) => {
    const card = componentCard(n, comps[n]);
    if (!TEXT_KEYS.has(`comp.${n}`) && !['database', 'disk', 'ffmpeg', 'queue', 'workers'].includes(n)) card.querySelector('h3 span').textContent = n;
    return card;
  }));
  $('updated').textContent = lastAt ? t('statusPage.updated', { t: lastAt.toLocaleTimeString() }) : '';
}

async function refresh() {
  try {
    const res = await fetch('/api/health', { cache: 'no-store' });
    const body = await res.json().catch(() => null);
    // A degraded server may answer 503 with the health body: show it as it is.
    if (body && typeof body.status === 'string' && !body.code) { last = body; lastError = null; }
    else { last = null; lastError = new ApiError(res.status, body?.code, body?.detail); }
  } catch (err) {
    lastError = new ApiError(0, 'network', String(err.message || err));
    last = null;
  }
  lastAt = new Date();
  render();
}

onLangChange(render);
refresh();
setInterval(refresh, 10_000);
