// Pricing page: plans from GET /api/payments/plans; a plan's pay button creates a payment
// (POST /api/payments/create) and sends the browser to YooKassa's confirmation_url.
// Guests are sent to log in first and come back here with the plan picked (?plan=id).
import {
  initPage, t, onLangChange, api, auth, el, showError, showMessage, clearMessage, isNotAvailable,
  showNotAvailable, loadPlans, planText, fmtMoney, fmtDate, tierName, ApiError,
} from './common.js';

initPage('pricing');
const $ = (id) => document.getElementById(id);
const chosen = new URLSearchParams(location.search).get('plan');
let catalog = null, loadErr = null, me = null, busy = false;

/** Errors of the create call in the payer's words (the payment service is YooKassa). */
function payError(err) {
  if (err instanceof ApiError && (err.status === 502 || err.status === 503 || err.status === 504) && !err.code?.startsWith('rate')) {
    return new ApiError(err.status, 'payment-provider-error', err.detail);
  }
  return err;
}

function planCard(p) {
  const text = planText(p);
  // The plan's own feature list; what it grants is spelled out only when it has none.
  const items = [...text.features];
  if (!items.length && p.tier) items.push(t('pricing.tierIncl', { tier: tierName(p.tier) }));
  if (!items.length && p.tokens) items.push(t('pricing.tokens', { n: p.tokens }));
  const price = fmtMoney(p.price, p.currency);
  const btn = el('button', { type: 'button', class: 'btn btn-primary', 'data-plan': p.id }, t('pricing.buy', { name: text.name, price }));
  btn.addEventListener('click', () => buy(p, btn));
  return el('article', { class: `card plan${p.id === chosen ? ' plan-chosen' : ''}`, 'data-plan-id': p.id, 'aria-labelledby': `plan-${p.id}-name` },
    el('h2', { id: `plan-${p.id}-name` }, text.name),
    el('div', { class: 'price' }, price,
      el('span', { class: 'period small muted' }, p.days ? t('pricing.perPeriod', { days: p.days }) : t('pricing.oneTime'))),
    text.description ? el('p', { class: 'muted' }, text.description) : null,
    items.length ? el('ul', {}, items.map((i) => el('li', {}, i))) : el('span', { class: 'flex-1' }),
    btn);
}

function renderCurrent() {
  const box = $('pricing-current');
  if (!me) { box.hidden = true; return; }
  const parts = [me.tier_expires_at && me.tier !== 'free'
    ? t('pricing.currentUntil', { tier: tierName(me.tier), date: fmtDate(me.tier_expires_at) })
    : t('pricing.current', { tier: tierName(me.tier) })];
  parts.push(t('pricing.currentTokens', { n: me.tokens ?? 0 }));
  box.textContent = parts.join(' · ');
  box.hidden = false;
}

function render() {
  renderCurrent();
  const box = $('plans');
  if (loadErr) { if (isNotAvailable(loadErr)) showNotAvailable(box); else showError(box, loadErr); return; }
  if (!catalog) return;
  $('pricing-demo').hidden = !catalog.demo;
  if (!catalog.plans.length) { box.replaceChildren(el('div', { class: 'empty-state' }, t('pricing.none'))); return; }
  box.replaceChildren(...catalog.plans.map(planCard));
  const pick = chosen && catalog.plans.find((p) => p.id === chosen);
  if (pick && auth.token() && !busy) {
    showMessage($('pricing-msg'), t('pricing.chosen', { name: planText(pick).name }), 'info');
  }
}

async function buy(plan, btn) {
  const msg = $('pricing-msg');
  if (busy) return;
  if (!auth.token()) {
    // Payments belong to an account: log in (or register) and come back with this plan picked.
    location.href = `/login?reason=pay&next=${encodeURIComponent(`/pricing?plan=${plan.id}`)}`;
    return;
  }
  busy = true;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  clearMessage(msg);
  showMessage(msg, t('pricing.creating'), 'info');
  try {
    const res = await api('/api/payments/create', { body: { plan: plan.id } });
    if (!res?.payment_id) throw new ApiError(502, 'payment-provider-error', 'no payment id in the answer');
    localStorage.setItem('mm_last_payment', res.payment_id);
    const url = res.confirmation_url || `/payment/return?payment_id=${encodeURIComponent(res.payment_id)}`;
    showMessage(msg, t(res.demo ? 'pricing.demoRedirecting' : 'pricing.redirecting'), 'info');
    location.assign(url);
    return; // the page is leaving: keep the button disabled
  } catch (err) {
    if (err.status === 401) { location.href = `/login?reason=pay&next=${encodeURIComponent(`/pricing?plan=${plan.id}`)}`; return; }
    if (isNotAvailable(err) && err.code !== 'unknown-plan') { showMessage(msg, t('common.notAvailableText'), 'info'); }
    else {
      showError(msg, payError(err));
    }
    msg.scrollIntoView({ block: 'center' });
  }
  busy = false;
  btn.disabled = false;
  btn.removeAttribute('aria-busy');
}

async function load() {
  const [plans, who] = await Promise.allSettled([loadPlans(), auth.token() ? api('/api/auth/me') : Promise.resolve(null)]);
  if (plans.status === 'fulfilled') catalog = plans.value; else loadErr = plans.reason;
  if (who.status === 'fulfilled' && who.value) { me = who.value; auth.update(me); }
  render();
  const pick = chosen && document.querySelector(`.plan-chosen button[data-plan]`);
  if (pick && auth.token()) { pick.scrollIntoView({ block: 'center' }); pick.focus(); }
}
onLangChange(render);
load();
