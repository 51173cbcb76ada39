// Pricing page: plans from /api/payments/plans; the pay button creates a payment and goes to YooKassa.
import { initPage, t, onLangChange, getLang, api, auth, el, showError, showMessage, isNotAvailable, showNotAvailable } from './common.js';

initPage('pricing');
const $ = (id) => document.getElementById(id);
let plans = null, loadErr = null;

/** Accepts a bare array or {plans:[…]} and tolerant field names (see web/README.md). */
function normalize(data) {
  const list = Array.isArray(data) ? data : (data?.plans || []);
  return list.map((p) => ({
    id: p.id ?? p.plan ?? p.code ?? p.key,
    name: (getLang() === 'ru' ? (p.name_ru || p.title_ru) : (p.name_en || p.title_en)) || p.name || p.title || p.id,
    description: (getLang() === 'ru' ? p.description_ru : p.description_en) || p.description || '',
    price: p.price ?? p.amount ?? p.price_rub ?? null,
    currency: p.currency || 'RUB',
    tier: p.tier || null,
    tokens: p.tokens ?? null,
    days: p.duration_days ?? p.period_days ?? p.days ?? null,
    features: Array.isArray(p.features) ? p.features : [],
  })).filter((p) => p.id !== undefined && p.id !== null);
}

function priceText(p) {
  if (p.price === null) return '';
  const n = Number(typeof p.price === 'object' ? p.price.value : p.price);
  try { return n.toLocaleString(getLang() === 'ru' ? 'ru-RU' : 'en-GB', { style: 'currency', currency: p.currency, maximumFractionDigits: Number.isInteger(n) ? 0 : 2 }); }
  catch { return `${n} ${p.currency}`; }
}

function render() {
  const box = $('plans');
  if (loadErr) { if (isNotAvailable(loadErr)) showNotAvailable(box); else showError(box, loadErr); return; }
  if (!plans) return;
  const list = normalize(plans);
  if (!list.length) { box.replaceChildren(el('div', { class: 'empty-state' }, t('pricing.none'))); return; }
  box.replaceChildren(...list.map((p) => {
    const items = [];
    if (p.tier) items.push(t('pricing.tierIncl', { tier: ['free', 'pro', 'studio'].includes(p.tier) ? t(`tier.${p.tier}`) : p.tier }));
    if (p.tokens) items.push(t('pricing.tokens', { n: p.tokens }));
    items.push(...p.features);
    const btn = el('button', { type: 'button', class: 'btn btn-primary', 'data-plan': p.id }, t('pricing.buy', { name: p.name }));
    btn.addEventListener('click', () => buy(p, btn));
    return el('article', { class: 'card plan' },
      el('h2', {}, p.name),
      el('div', { class: 'price' }, priceText(p), p.days ? el('span', { class: 'small muted' }, ` ${t('pricing.perPeriod', { days: p.days })}`) : null),
      p.description ? el('p', { class: 'muted' }, p.description) : null,
      items.length ? el('ul', {}, items.map((i) => el('li', {}, i))) : el('span', { class: 'flex-1' }),
      btn);
  }));
}

async function buy(plan, btn) {
  const msg = $('pricing-msg');
  if (!auth.token()) {
    showMessage(msg, t('pricing.loginFirst'), 'info');
    msg.append(el('p', { class: 'row mt-1' },
      el('a', { class: 'btn btn-primary btn-small', href: '/login?next=/pricing' }, t('nav.login')),
      el('a', { class: 'btn btn-small', href: '/login?mode=register&next=/pricing' }, t('auth.registerTitle'))));
    msg.scrollIntoView({ block: 'center' });
    return;
  }
  btn.disabled = true;
  try {
    const res = await api('/api/payments/create', { body: { plan: plan.id } });
    if (res.payment_id) localStorage.setItem('mm_last_payment', res.payment_id);
    showMessage(msg, t('pricing.redirecting'), 'info');
    const url = res.confirmation_url || `/payment/return?payment_id=${encodeURIComponent(res.payment_id || '')}`;
    location.href = url;
  } catch (err) {
    if (err.status === 401) { location.href = '/login?next=/pricing'; return; }
    if (isNotAvailable(err)) { showMessage(msg, t('common.notAvailableText'), 'info'); return; }
    showError(msg, err);
    msg.scrollIntoView({ block: 'center' });
  } finally {
    btn.disabled = false;
  }
}

async function load() {
  try { plans = await api('/api/payments/plans'); } catch (err) { loadErr = err; }
  render();
}
onLangChange(render);
load();
