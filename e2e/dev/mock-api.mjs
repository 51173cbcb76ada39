// DEVELOPMENT ONLY: serves web/ with the same URL map as the real API (see web/README.md) and
// answers /api/* with canned data shaped like docs/API.md, so pages can be looked at before
// the backend has the routes. The e2e tests never use it: they start the real API binary.
//   node e2e/dev/mock-api.mjs [port]        (MOCK_ADMIN=0 / MOCK_MISSING=accounts to vary)
//   MOCK_UPSTREAM=http://127.0.0.1:8000 …   forwards /api/* to a real API instead of the canned answers
import http from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTestWav } from '../lib/wav.mjs';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const PAGES = { '/': 'index.html', '/account': 'account.html', '/login': 'login.html', '/pricing': 'pricing.html', '/payment/return': 'payment-return.html', '/admin': 'admin.html', '/status': 'status.html' };
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json' };
const missing = (process.env.MOCK_MISSING || '').split(',');
const started = new Date(Date.now() - 3 * 86400e3 - 4 * 3600e3).toISOString();
const jobs = new Map();

const STYLES = [
  ['standard', -14, 'Balanced, radio-ready master for most genres.'], ['edm', -9, 'Loud and punchy for club music.'],
  ['hiphop', -10, 'Heavy low end and clear vocals.'], ['classical', -18, 'Gentle, keeps the dynamics.'],
  ['podcast', -16, 'Even, clear speech.'], ['lofi', -13, 'Warm and soft.'], ['house_basic', -10, 'Tight kick and bass.'], ['dry_vocal', -16, 'For an untreated voice.'],
].map(([id, t, d]) => ({ id, name: id, target_lufs: t, description: d }));

function json(res, code, body) { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); }
function err(res, code, c, detail) { json(res, code, { detail, code: c }); }

function jobStatus(id) {
  const j = jobs.get(id);
  const el = (Date.now() - j.t0) / 1000;
  const p = Math.min(100, Math.round(el * 25));
  const done = p >= 100;
  return {
    job_id: id, status: done ? 'done' : el < 0.5 ? 'queued' : 'running', progress: p, message: done ? 'done' : 'Limiting', error: null,
    style: j.style, target_lufs: -14, true_peak_db: -1, out_format: 'wav', before_lufs: -22.4, after_lufs: done ? -14 : null,
    before: { lufs: -22.4, true_peak_db: -11.8, lra: 5.2, duration_sec: 6, sample_rate: 44100, channels: 2 },
    after: done ? { lufs: -14.0, true_peak_db: -1.0, lra: 4.1 } : null,
    created_at: new Date(j.t0).toISOString(), expires_at: new Date(j.t0 + 86400e3).toISOString(),
  };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (!p.startsWith('/api/')) {
    const file = PAGES[p] ? join(WEB, PAGES[p]) : p.startsWith('/assets/') ? join(WEB, normalize(p).replace(/^(\.\.[/\\])+/, '')) : null;
    if (!file || !existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'" });
    res.end(readFileSync(file));
    return;
  }
  if (process.env.MOCK_UPSTREAM) {
    const up = new URL(req.url, process.env.MOCK_UPSTREAM);
    const preq = http.request(up, { method: req.method, headers: { ...req.headers, host: up.host } }, (pres) => {
      res.writeHead(pres.statusCode, pres.headers);
      pres.pipe(res);
    });
    preq.on('error', (e) => err(res, 502, 'upstream', String(e)));
    req.pipe(preq);
    return;
  }
  const group = p.startsWith('/api/admin') || p.startsWith('/api/auth') || p.startsWith('/api/payments') || p === '/api/limits' || p === '/api/jobs' ? 'accounts' : 'core';
  if (missing.includes(group)) { err(res, 404, 'not-found', 'no such route'); return; }
  const admin = process.env.MOCK_ADMIN !== '0';
  if (p === '/api/health') return json(res, 200, { status: 'ok', version: '0.1.0', uptime_since: started, components: { database: { status: 'ok', detail: '' }, disk: { status: 'ok', free_mb: 51234, path: '/tmp/magic-master' }, ffmpeg: { status: 'missing' }, queue: { status: 'ok', pending: 0, running: 1, failed_last_hour: 0, oldest_pending_sec: 0 }, workers: { status: 'ok', alive: 2 } }, jobs: { running: 1, queued: 0, total_cached: 12 } });
  if (p === '/api/styles') return json(res, 200, { styles: STYLES });
  if (p === '/api/limits') return json(res, 200, { tier: 'free', used_today: 1, daily_limit: 3, remaining: 2, reset_at: new Date(Date.now() + 5 * 3600e3).toISOString(), tokens: 0 });
  if (p === '/api/v2/master' && req.method === 'POST') {
    for await (const _ of req) { /* drain */ }
    const id = Math.random().toString(36).slice(2, 14);
    jobs.set(id, { t0: Date.now(), style: 'standard' });
    return json(res, 202, { job_id: id, status: 'queued' });
  }
  let m;
  if ((m = p.match(/^\/api\/master\/status\/(\w+)$/))) return jobs.has(m[1]) ? json(res, 200, jobStatus(m[1])) : err(res, 404, 'job-not-found', 'unknown job');
  if ((m = p.match(/^\/api\/master\/progress\/(\w+)$/))) {
    if (!jobs.has(m[1])) return err(res, 404, 'job-not-found', 'unknown job');
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const tick = () => { const s = jobStatus(m[1]); res.write(`data: ${JSON.stringify(s)}\n\n`); if (s.status === 'done') res.end(); else setTimeout(tick, 300); };
    tick();
    return;
  }
  if ((m = p.match(/^\/api\/master\/(preview|result)\/(\w+)$/))) {
    const loud = m[1] === 'result' || url.searchParams.get('src') === 'mastered';
    const wav = makeTestWav({ seconds: 6, peakDb: loud ? -1.2 : -12 });
    res.writeHead(200, { 'Content-Type': 'audio/wav', 'Content-Disposition': 'attachment; filename="mix_mastered.wav"' });
    return res.end(wav);
  }
  if (p === '/api/auth/login' || p === '/api/auth/register') {
    let body = ''; for await (const c of req) body += c;
    const { email } = JSON.parse(body || '{}');
    return json(res, 200, { access_token: 'mock.jwt.token', token_type: 'bearer', email, tier: 'free', is_admin: admin });
  }
  const authed = !!req.headers.authorization;
  if (p === '/api/auth/me') return authed ? json(res, 200, { id: 1, email: 'singer@example.com', tier: 'pro', tier_expires_at: new Date(Date.now() + 20 * 86400e3).toISOString(), tokens: 12, is_admin: admin }) : err(res, 401, 'unauthorized', 'missing token');
  if (p === '/api/jobs') return json(res, 200, { jobs: [
    { job_id: 'a1b2c3', status: 'done', style: 'edm', out_format: 'wav', created_at: new Date(Date.now() - 3600e3).toISOString(), expires_at: new Date(Date.now() + 20 * 3600e3).toISOString(), original_filename: 'summer_night_mix.wav' },
    { job_id: 'd4e5f6', status: 'failed', style: 'podcast', out_format: 'mp3', created_at: new Date(Date.now() - 7200e3).toISOString(), expires_at: null, original_filename: 'episode-12.m4a' },
    { job_id: 'g7h8i9', status: 'done', style: 'standard', out_format: 'flac', created_at: new Date(Date.now() - 4 * 86400e3).toISOString(), expires_at: new Date(Date.now() - 86400e3).toISOString(), original_filename: 'demo.flac' }] });
  // Payments, shaped like the payments contract (MOCK_DEMO=1 → demo mode, MOCK_PAY_STATUS=canceled|refunded|failed|pending).
  const demo = process.env.MOCK_DEMO === '1';
  if (p === '/api/payments/plans') return json(res, 200, { demo, currency: 'RUB', plans: [
    { id: 'pro_month', name: 'Pro', name_ru: 'Pro', description: 'For musicians who release regularly.', description_ru: 'Для тех, кто регулярно выпускает треки.', price: '490.00', currency: 'RUB', tier: 'pro', duration_days: 30, tokens: null, features: ['20 masters a day', 'WAV 24-bit, FLAC and MP3'], features_ru: ['20 мастерингов в день', 'WAV 24 бита, FLAC и MP3'] },
    { id: 'studio_month', name: 'Studio', name_ru: 'Studio', description: 'For studios and labels.', description_ru: 'Для студий и лейблов.', price: '1490.00', currency: 'RUB', tier: 'studio', duration_days: 30, tokens: null, features: ['100 masters a day', 'Every format'], features_ru: ['100 мастерингов в день', 'Все форматы'] },
    { id: 'tokens_10', name: '10 tokens', name_ru: '10 токенов', description: 'Ten extra masters, no time limit.', description_ru: 'Десять мастерингов сверх лимита, без срока.', price: '190.00', currency: 'RUB', tier: null, duration_days: null, tokens: 10, features: [], features_ru: [] },
    { id: 'tokens_50', name: '50 tokens', name_ru: '50 токенов', description: 'Fifty extra masters, no time limit.', description_ru: 'Пятьдесят мастерингов сверх лимита, без срока.', price: '790.00', currency: 'RUB', tier: null, duration_days: null, tokens: 50, features: [], features_ru: [] }] });
  const payment = (id, status) => ({ payment_id: id, status, plan: 'pro_month', amount: '490.00', currency: 'RUB', created_at: new Date(Date.now() - 60e3).toISOString(), credited: status === 'succeeded', demo });
  if (p === '/api/payments/create') return authed ? json(res, 201, { payment_id: 'pay123', status: demo ? 'succeeded' : 'pending', confirmation_url: '/payment/return?payment_id=pay123', plan: 'pro_month', amount: '490.00', currency: 'RUB', demo }) : err(res, 401, 'unauthorized', 'missing token');
  if (p === '/api/payments') return authed ? json(res, 200, { payments: [payment('pay123', 'succeeded'), payment('pay122', 'canceled'), payment('pay121', 'pending')] }) : err(res, 401, 'unauthorized', 'missing token');
  if ((m = p.match(/^\/api\/payments\/(\w+)$/))) return authed ? json(res, 200, payment(m[1], process.env.MOCK_PAY_STATUS || 'succeeded')) : err(res, 401, 'unauthorized', 'missing token');
  if (p === '/api/admin/stats') return json(res, 200, { users_total: 128, users_paid: 17, jobs_total: 2310, jobs_today: 41, jobs_failed_today: 1, revenue_month_rub: 18430, jobs_by_status: { queued: 0, running: 1, done: 2290, failed: 19 } });
  if (p === '/api/admin/users') return json(res, 200, { users: [
    { id: 1, email: 'admin@example.com', tier: 'studio', tokens: 0, is_admin: true, is_blocked: false, created_at: started },
    { id: 2, email: 'singer@example.com', tier: 'pro', tier_expires_at: new Date(Date.now() + 20 * 86400e3).toISOString(), tokens: 12, is_admin: false, is_blocked: false, created_at: started },
    { id: 3, email: 'spam@example.net', tier: 'free', tokens: 0, is_admin: false, is_blocked: true, created_at: started }], total: 3 });
  if (p === '/api/admin/jobs') return json(res, 200, { jobs: [
    { job_id: 'f00dfeedbeef01', status: 'failed', user_email: 'singer@example.com', style: 'edm', out_format: 'wav', attempts: 3, error: 'could not decode input: unsupported codec', created_at: started, original_filename: 'broken.m4a' },
    { job_id: 'c0ffee000002', status: 'done', user_email: null, style: 'standard', out_format: 'mp3', attempts: 1, error: null, created_at: started, original_filename: 'song.wav' }], total: 2 });
  if (p === '/api/admin/settings') return json(res, 200, { settings: { MAGIC_MASTER_PORT: 8000, MAGIC_MASTER_MAX_UPLOAD_MB: 200, MAGIC_MASTER_JWT_SECRET: '***', MAGIC_MASTER_YOOKASSA_SECRET_KEY: '***', MAGIC_MASTER_GUEST_DAILY_LIMIT: 3 } });
  if (p.startsWith('/api/admin/users/') || p.startsWith('/api/admin/jobs/')) return json(res, 200, { ok: true });
  if (p === '/api/admin/backup/db') { res.writeHead(200, { 'Content-Type': 'application/vnd.sqlite3', 'Content-Disposition': 'attachment; filename="magic_master_backup_20261130_120000.sqlite3"' }); return res.end('SQLite format 3\0'); }
  err(res, 404, 'not-found', 'no such route');
});
server.listen(Number(process.argv[2] || 8765), '127.0.0.1', () => console.log(`mock on http://127.0.0.1:${server.address().port}`));
