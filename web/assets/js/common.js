// Shared by every page: language (i18n), the API client, errors in plain words, the site header.
import { TEXTS, ERROR_CODE_KEYS } from './i18n.js';

// ---------------------------------------------------------------- i18n
const LANG_KEY = 'mm_lang';
const SUPPORTED = ['en', 'ru'];
const langListeners = [];

function detectLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (SUPPORTED.includes(saved)) return saved;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return nav.toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

let lang = detectLang();

/** Current language code: 'en' or 'ru'. */
export function getLang() { return lang; }

/** Text for `key` in the current language with {placeholders} filled from `vars`. */
export function t(key, vars = {}) {
  const s = TEXTS[lang][key] ?? TEXTS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** Fills `data-i18n` (text) and `data-i18n-attr="attr:key;attr:key"` elements under `root`. */
export function applyI18n(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((node) => { node.textContent = t(node.dataset.i18n); });
  root.querySelectorAll('[data-i18n-attr]').forEach((node) => {
    for (const pair of node.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) node.setAttribute(attr, t(key));
    }
  });
}

/** Switches the language, remembers it, re-renders static texts and notifies pages. */
export function setLang(next) {
  if (!SUPPORTED.includes(next)) return;
  lang = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next;
  applyI18n();
  const sel = document.getElementById('lang-select');
  if (sel) sel.value = next;
  langListeners.forEach((fn) => fn(next));
}

/** Calls `fn` after every language switch (for texts a page renders itself). */
export function onLangChange(fn) { langListeners.push(fn); }

// ---------------------------------------------------------------- formatting
const locale = () => (lang === 'ru' ? 'ru-RU' : 'en-GB');

/** A number with a real minus sign and the locale's decimal mark; '—' for null. */
export function fmtNum(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  return Number(n).toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).replace('-', '−');
}

/** Date and time in the reader's language; '—' for empty. */
export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { dateStyle: 'medium', timeStyle: 'short' });
}

/** Seconds as "3 d 4 h", "5 h 2 min" or "40 s". */
export function fmtDuration(sec) {
  sec = Math.max(0, Math.floor(sec));
  const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60);
  const u = lang === 'ru' ? { d: 'д', h: 'ч', m: 'мин', s: 'с' } : { d: 'd', h: 'h', m: 'min', s: 's' };
  if (d) return `${d} ${u.d} ${h} ${u.h}`;
  if (h) return `${h} ${u.h} ${m} ${u.m}`;
  if (m) return `${m} ${u.m}`;
  return `${sec} ${u.s}`;
}

/** An amount of money ("490.00", 490 or {value, currency}) in the reader's language: "490 ₽". */
export function fmtMoney(value, currency = 'RUB') {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'object') { currency = value.currency || currency; value = value.value; }
  const n = Number(value);
  if (Number.isNaN(n)) return `${value} ${currency}`;
  try {
    return n.toLocaleString(locale(), { style: 'currency', currency, minimumFractionDigits: Number.isInteger(n) ? 0 : 2, maximumFractionDigits: 2 });
  } catch { return `${n} ${currency}`; }
}

/** Bytes as "12.3 MB". */
export function fmtBytes(b) {
  const mb = b / (1024 * 1024);
  const [MB, KB] = lang === 'ru' ? ['МБ', 'КБ'] : ['MB', 'KB'];
  return mb >= 1 ? `${fmtNum(mb, 1)} ${MB}` : `${fmtNum(b / 1024, 0)} ${KB}`;
}

/** Small DOM helper: el('a', {href: '/', class: 'x'}, 'text', child…). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// ---------------------------------------------------------------- icons
// Inline SVG icons: emoji are not in every system font (no colour-emoji font on a bare Linux).
const ICON_PATHS = {
  sparkle: '<path d="M12 2l2.2 6.3L20.5 10l-6.3 2.2L12 18.5l-2.2-6.3L3.5 10l6.3-1.7z"/><path d="M19 15l.9 2.1L22 18l-2.1.9L19 21l-.9-2.1L16 18l2.1-.9z"/>',
  note: '<path d="M9 18.5a3 3 0 1 1-2-2.83V5l12-2v12.5a3 3 0 1 1-2-2.83V6.4L9 7.9z"/>',
  check: '<path d="M9.5 16.6L4.9 12l-1.4 1.4 6 6 12-12-1.4-1.4z"/>',
  cross: '<path d="M6.4 5L12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6 10.6 12 5 6.4z"/>',
  clock: '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 2a8 8 0 1 1 0 16 8 8 0 0 1 0-16zm-1 3v6l5 3 1-1.7-4-2.3V7z"/>',
  question: '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 16h-2v-2h2zm2.1-7.7l-.9.9c-.7.7-1.2 1.3-1.2 2.8h-2v-.5c0-1.1.5-2.1 1.2-2.8l1.2-1.3A2 2 0 1 0 10 8H8a4 4 0 1 1 7.1 2.3z"/>',
  tools: '<path d="M22.7 19l-9.1-9.1c.9-2.3.4-5-1.5-6.9-2-2-5-2.4-7.4-1.3L9 6 6 9 1.6 4.7C.4 7.1.9 10.1 2.9 12.1c1.9 1.9 4.6 2.4 6.9 1.5l9.1 9.1c.4.4 1 .4 1.4 0l2.3-2.3c.5-.4.5-1.1.1-1.4z"/>',
  headphones: '<path d="M12 3a9 9 0 0 0-9 9v7a2 2 0 0 0 2 2h2v-8H5v-1a7 7 0 0 1 14 0v1h-2v8h2a2 2 0 0 0 2-2v-7a9 9 0 0 0-9-9z"/>',
};

/** An inline SVG icon (decorative: hidden from screen readers). */
export function icon(name, size = 24) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('fill', 'currentColor');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.innerHTML = ICON_PATHS[name] || '';
  return svg;
}

// ---------------------------------------------------------------- auth storage
const TOKEN_KEY = 'mm_token';
const USER_KEY = 'mm_user';

export const auth = {
  /** The saved JWT or null. */
  token() { return localStorage.getItem(TOKEN_KEY); },
  /** The saved {email, tier, is_admin} or null. */
  user() { try { return JSON.parse(localStorage.getItem(USER_KEY) || 'null'); } catch { return null; } },
  /** Saves a login/register answer. */
  save(resp) {
    localStorage.setItem(TOKEN_KEY, resp.access_token);
    localStorage.setItem(USER_KEY, JSON.stringify({ email: resp.email, tier: resp.tier, is_admin: !!resp.is_admin }));
  },
  /** Updates the cached user from /api/auth/me. */
  update(me) {
    localStorage.setItem(USER_KEY, JSON.stringify({ email: me.email, tier: me.tier, is_admin: !!me.is_admin }));
  },
  clear() { localStorage.removeItem(TOKEN_KEY); localStorage.removeItem(USER_KEY); },
  headers() { const tk = this.token(); return tk ? { Authorization: `Bearer ${tk}` } : {}; },
};

// ---------------------------------------------------------------- API client
/** An error answer of the API ({detail, code} with an HTTP status), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, detail, extra = {}) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.detail = detail || '';
    Object.assign(this, extra);
  }
}

async function errorFrom(res) {
  let body = {};
  try { body = await res.json(); } catch { /* not JSON */ }
  const detail = typeof body.detail === 'string' ? body.detail : (body.detail ? JSON.stringify(body.detail) : '');
  return new ApiError(res.status, body.code, detail, {
    retryAfter: res.headers.get('Retry-After'),
    resetAt: body.reset_at || null,
  });
}

/**
 * Calls the API. `body` is sent as JSON, `form` as FormData. Returns parsed JSON
 * (or the Response when `raw`). Throws ApiError on a non-2xx answer or a network failure.
 * A 401 on an authenticated call forgets the stored token.
 */
export async function api(path, { method, body, form, raw = false, signal, headers = {} } = {}) {
  const init = { method: method || (body || form ? 'POST' : 'GET'), headers: { ...auth.headers(), ...headers }, signal, credentials: 'same-origin' };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
  if (form) init.body = form;
  let res;
  try { res = await fetch(path, init); } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', String(e.message || e));
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && auth.token()) auth.clear();
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

/** Parses XHR/Fetch error bodies the same way for callers outside `api()` (e.g. upload XHR). */
export function apiErrorFromText(status, text, retryAfter) {
  let body = {};
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return new ApiError(status, body.code, typeof body.detail === 'string' ? body.detail : '', { retryAfter, resetAt: body.reset_at || null });
}

/** Filename from a Content-Disposition header (RFC 5987 filename* first). */
export function filenameFromDisposition(header, fallback) {
  if (!header) return fallback;
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (star) { try { return decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')); } catch { /* fall through */ } }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

/** Downloads `url` with the stored token (fetch → blob → a temporary link). Returns the file name. */
export async function downloadWithAuth(url, fallbackName = 'download') {
  const res = await api(url, { raw: true });
  const name = filenameFromDisposition(res.headers.get('Content-Disposition'), fallbackName);
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = el('a', { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return name;
}

// ---------------------------------------------------------------- errors in plain words
/**
 * Turns any error into {title, detail}: a sentence a musician understands, plus the server's own
 * words (if different) for support.
 */
export function friendlyError(err) {
  if (!(err instanceof ApiError)) return { title: t('err.unknown'), detail: String(err?.message || err || '') };
  if (err.status === 0) return { title: t('err.network'), detail: err.detail };
  let key = ERROR_CODE_KEYS[err.code];
  if (!key) {
    const s = err.status;
    if ([400, 401, 403, 404, 409, 410, 413, 415, 429, 503].includes(s)) key = `err.${s}`;
    else if (s >= 500) key = 'err.500';
  }
  let title;
  if (key === 'err.429' || key === 'err.rateLimited') {
    let reset = '';
    if (err.resetAt) reset = t('err.429reset', { t: fmtDate(err.resetAt) });
    else if (err.retryAfter && /^\d+$/.test(err.retryAfter)) reset = t('err.429reset', { t: fmtDate(new Date(Date.now() + Number(err.retryAfter) * 1000).toISOString()) });
    title = t(key, { reset }).trim();
  } else if (key === 'err.400' && err.detail) {
    // A 400's detail usually names the exact field problem: show it as the message itself.
    title = err.detail;
    return { title, detail: '' };
  } else {
    title = key ? t(key) : (err.detail || t('err.unknown'));
  }
  const detail = err.detail && err.detail !== title ? `${err.detail}${err.code ? ` (${err.code}, HTTP ${err.status})` : ` (HTTP ${err.status})`}` : '';
  return { title, detail };
}

/** Shows `err` in `box` (an .alert element) in plain words, with technical details folded away. */
export function showError(box, err) {
  const { title, detail } = friendlyError(err);
  box.className = 'alert alert-error';
  box.setAttribute('role', 'alert');
  box.replaceChildren(el('p', { class: 'alert-title' }, title));
  if (detail) box.append(el('details', {}, el('summary', {}, t('common.details')), el('div', { class: 'mono' }, detail)));
  box.hidden = false;
}

/** Shows a plain message (kind: 'info' | 'ok' | 'error') in `box`. */
export function showMessage(box, text, kind = 'info') {
  box.className = `alert alert-${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.replaceChildren(el('p', { class: 'alert-title' }, text));
  box.hidden = false;
}

export function clearMessage(box) { box.hidden = true; box.replaceChildren(); }

/** True for answers meaning "this route is not on this server yet". */
export function isNotAvailable(err) { return err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 501); }

/** Renders the friendly "not available yet" panel into `container`. */
export function showNotAvailable(container) {
  container.replaceChildren(el('div', { class: 'empty-state', 'data-state': 'not-available' },
    el('span', { class: 'icon' }, icon('tools', 36)),
    el('h2', { 'data-i18n': 'common.notAvailable' }, t('common.notAvailable')),
    el('p', { 'data-i18n': 'common.notAvailableText' }, t('common.notAvailableText'))));
}

// ---------------------------------------------------------------- plans and payments
/** A tier id in the reader's language ("pro" → "Pro"); unknown ids as they are, '—' for none. */
export function tierName(tier) {
  if (!tier) return '—';
  return ['guest', 'free', 'pro', 'studio'].includes(tier) ? t(`tier.${tier}`) : String(tier);
}

/**
 * The answer of `GET /api/payments/plans` as `{demo, currency, plans}`, each plan
 * `{id, name, name_ru, description, description_ru, price, currency, tier, tokens, days, features, features_ru}`.
 * Follows the payments contract; a bare list and older field names are still accepted.
 */
export function normalizePlans(data) {
  const list = Array.isArray(data) ? data : (Array.isArray(data?.plans) ? data.plans : []);
  const currency = (!Array.isArray(data) && data?.currency) || 'RUB';
  const strings = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string' && x.trim()) : []);
  const plans = list.map((p) => ({
    id: p.id ?? p.plan ?? p.code ?? null,
    name: p.name || p.title || p.name_en || '',
    name_ru: p.name_ru || p.title_ru || '',
    description: p.description || p.description_en || '',
    description_ru: p.description_ru || '',
    price: p.price ?? p.amount ?? null,
    currency: p.currency || currency,
    tier: p.tier || null,
    tokens: p.tokens ?? null,
    days: p.duration_days ?? p.period_days ?? null,
    features: strings(p.features),
    features_ru: strings(p.features_ru),
  })).filter((p) => p.id !== null && p.id !== undefined);
  return { demo: !Array.isArray(data) && data?.demo === true, currency, plans };
}

/** A plan's name, description and feature list in the reader's language (English when a Russian text is missing). */
export function planText(p) {
  const ru = lang === 'ru';
  return {
    name: (ru && p.name_ru) || p.name || String(p.id),
    description: (ru && p.description_ru) || p.description || '',
    features: ru && p.features_ru.length ? p.features_ru : p.features,
  };
}

let plansPromise = null;
/** `GET /api/payments/plans`, normalised, fetched once per page load. */
export function loadPlans() {
  if (!plansPromise) {
    plansPromise = api('/api/payments/plans').then(normalizePlans);
    plansPromise.catch(() => { plansPromise = null; });
  }
  return plansPromise;
}

/** The name of plan `id` from a loaded plan list (the id itself when the plan is unknown). */
export function planName(plans, id) {
  const p = plans?.find((x) => x.id === id);
  return p ? planText(p).name : (id || '—');
}

/** Payment statuses of the payments contract; `pending` and `waiting_for_capture` are not final. */
export const PAYMENT_STATUSES = ['pending', 'waiting_for_capture', 'succeeded', 'canceled', 'refunded', 'failed'];

/** A payment status in the reader's words. */
export function paymentStatusText(status) {
  const s = status === 'cancelled' ? 'canceled' : status;
  return PAYMENT_STATUSES.includes(s) ? t(`paystatus.${s}`) : String(status || '—');
}

// ---------------------------------------------------------------- page frame
const NAV = [
  { href: '/', key: 'nav.master', id: 'master' },
  { href: '/pricing', key: 'nav.pricing', id: 'pricing' },
  { href: '/account', key: 'nav.account', id: 'account', auth: true },
  { href: '/login', key: 'nav.login', id: 'login', guest: true },
  { href: '/admin', key: 'nav.admin', id: 'admin', admin: true },
  { href: '/status', key: 'nav.status', id: 'status' },
];

function renderHeader(active) {
  const user = auth.user();
  const logged = !!auth.token();
  const nav = el('nav', { class: 'site-nav', 'aria-label': 'Main' });
  for (const item of NAV) {
    if (item.auth && !logged) continue;
    if (item.guest && logged) continue;
    if (item.admin && !(logged && user?.is_admin)) continue;
    nav.append(el('a', { href: item.href, 'data-i18n': item.key, 'aria-current': item.id === active ? 'page' : null }, t(item.key)));
  }
  const select = el('select', { id: 'lang-select', name: 'lang' },
    el('option', { value: 'en' }, 'English'), el('option', { value: 'ru' }, 'Русский'));
  select.value = lang;
  select.addEventListener('change', () => setLang(select.value));
  const header = el('header', { class: 'site-header' },
    el('div', { class: 'header-inner' },
      el('a', { class: 'brand', href: '/' }, el('img', { src: '/assets/favicon.svg', alt: '', width: '28', height: '28' }), 'Magic ', el('span', {}, 'Master')),
      nav,
      el('div', { class: 'lang-switch' }, el('label', { for: 'lang-select', 'data-i18n': 'lang.label' }, t('lang.label')), select)));
  const skip = el('a', { class: 'skip-link', href: '#main', 'data-i18n': 'skip' }, t('skip'));
  document.body.prepend(skip, header);
  document.body.append(el('footer', { class: 'site-footer' },
    el('div', { class: 'inner' },
      el('span', { 'data-i18n': 'footer.tagline' }, t('footer.tagline')),
      el('a', { href: '/status', 'data-i18n': 'nav.status' }, t('nav.status')))));
}

/** Sets up a page: language, header with navigation (`active` = nav id), static texts. */
export function initPage(active) {
  document.documentElement.lang = lang;
  renderHeader(active);
  applyI18n();
}

/** Re-draws the header (after login/logout changes which links show). */
export function refreshHeader(active) {
  document.querySelector('.site-header')?.remove();
  document.querySelector('.skip-link')?.remove();
  document.querySelector('.site-footer')?.remove();
  renderHeader(active);
}

/**
 * A table in a scrolling wrapper; on phones each row becomes a small card whose cells are
 * labelled with their column heading (from `data-label`).
 */
export function dataTable(headings, rows) {
  for (const tr of rows) {
    [...tr.children].forEach((td, i) => {
      td.setAttribute('data-label', headings[i] ?? '');
      // One grid item per cell on phones: wrap cells with several children.
      if (td.childNodes.length > 1) td.replaceChildren(el('div', {}, ...td.childNodes));
    });
  }
  return el('div', { class: 'table-wrap stack-on-phone' }, el('table', {},
    el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows)));
}

/** Small sleep for polling loops. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
