// Log in and register on one page: /login, /login?mode=register, optional ?next=/path.
import { initPage, t, api, auth, showError, showMessage, clearMessage, isNotAvailable } from './common.js';

initPage('login');
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let mode = params.get('mode') === 'register' ? 'register' : 'login';
const next = (() => { const n = params.get('next'); return n && n.startsWith('/') && !n.startsWith('//') ? n : '/account'; })();

function renderMode() {
  const reg = mode === 'register';
  for (const [id, key] of [['auth-title', reg ? 'auth.registerTitle' : 'auth.loginTitle'], ['auth-submit', reg ? 'auth.registerBtn' : 'auth.loginBtn'], ['auth-toggle', reg ? 'auth.toLogin' : 'auth.toRegister']]) {
    $(id).dataset.i18n = key;
    $(id).textContent = t(key);
  }
  $('password').autocomplete = reg ? 'new-password' : 'current-password';
  $('password-hint').hidden = !reg;
  document.title = `${t(reg ? 'auth.registerTitle' : 'auth.loginTitle')} — Magic Master`;
}

$('auth-toggle').addEventListener('click', () => {
  mode = mode === 'login' ? 'register' : 'login';
  const q = new URLSearchParams(location.search);
  if (mode === 'register') q.set('mode', 'register'); else q.delete('mode');
  history.replaceState(null, '', q.toString() ? `?${q}` : location.pathname);
  clearMessage($('auth-error'));
  renderMode();
  $('email').focus();
});

$('auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const box = $('auth-error');
  clearMessage(box);
  const email = $('email').value.trim(), password = $('password').value;
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) { showMessage(box, t('err.badEmail'), 'error'); $('email').focus(); return; }
  if (mode === 'register' && password.length < 8) { showMessage(box, t('err.weakPassword'), 'error'); $('password').focus(); return; }
  if (!password) { $('password').focus(); return; }
  $('auth-submit').disabled = true;
  try {
    const resp = await api(`/api/auth/${mode}`, { body: { email, password } });
    auth.save(resp);
    location.href = resp.is_admin && next === '/account' ? '/admin' : next;
  } catch (err) {
    if (isNotAvailable(err)) { showMessage(box, t('common.notAvailableText'), 'info'); return; }
    if (err.status === 401 && mode === 'login' && !err.code) err.code = 'invalid-credentials';
    if (err.status === 409 && mode === 'register' && !err.code) err.code = 'email-taken';
    showError(box, err);
  } finally {
    $('auth-submit').disabled = false;
  }
});

// Sent here by a pay button: say why (the plan is added to the account that pays).
$('auth-reason').hidden = params.get('reason') !== 'pay';
renderMode();
