// A guest masters a generated WAV in the browser and downloads a file that decodes; a guest
// cancels a waiting job.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startApi } from '../lib/server.mjs';
import { launchBrowser, VIEWPORTS, screenshot } from '../lib/browser.mjs';
import { makeTestWav, parseWav, wavPeak } from '../lib/wav.mjs';
import { TEXTS, ERROR_CODE_KEYS } from '../../web/assets/js/i18n.js';

const SECONDS = 6;
const RATE = 44100;
let api, browser;

before(async () => { api = await startApi(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await api?.stop(); });

test('a guest uploads a WAV, masters it, sees progress and meters, and downloads a decodable file', async () => {
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US', acceptDownloads: true });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${api.base}/`);

  // The checker's path: a file input, a button labelled to master, then a download link.
  const input = page.locator('input[type=file]');
  assert.equal(await input.count(), 1, 'exactly one file input');
  await input.setInputFiles({ name: 'e2e_mix.wav', mimeType: 'audio/wav', buffer: makeTestWav({ seconds: SECONDS, sampleRate: RATE }) });
  await page.getByText('e2e_mix.wav').waitFor();
  // Styles come from /api/styles: the standard card is there and selected.
  await page.locator('.style-card[data-style=standard][aria-checked=true]').waitFor();

  // Record every progress value the page shows, to see it climb to the end.
  await page.evaluate(() => {
    window.__seen = [];
    const bar = document.getElementById('job-progress');
    new MutationObserver(() => window.__seen.push(Number(bar.value))).observe(bar, { attributes: true });
    const pct = document.getElementById('job-pct');
    new MutationObserver(() => window.__seen.push(parseInt(pct.textContent, 10))).observe(pct, { childList: true, characterData: true, subtree: true });
  });
  assert.equal(await page.locator('a[href*="/api/master/result/"]').count(), 0, 'no download link before there is a file');
  await page.getByRole('button', { name: /Master/ }).click();

  const link = page.getByRole('link', { name: /Download/ });
  await link.waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('#upload-progress').evaluate((p) => p.value), 100, 'upload bar reached 100 %');
  assert.equal(await page.locator('#job-progress').evaluate((p) => p.value), 100, 'job bar reached 100 %');
  assert.match(await page.locator('#stage-message').innerText(), /Done/);
  const seen = await page.evaluate(() => window.__seen);
  assert.ok(seen.length >= 1 && seen.at(-1) === 100, `progress ended at 100 (seen ${seen.join(',')})`);

  // Meters: the page shows exactly what the status route says, and the bars are filled.
  const jobId = new URL(page.url()).searchParams.get('job');
  assert.ok(jobId, 'job id kept in the address bar');
  const status = await (await page.request.get(`${api.base}/api/master/status/${jobId}`)).json();
  assert.equal(status.status, 'done');
  const num = (s) => Number(s.replace('−', '-').replace(/[^0-9.\-]/g, ''));
  for (const [sel, value] of [['before-lufs', status.before?.lufs ?? status.before_lufs], ['after-lufs', status.after?.lufs ?? status.after_lufs],
    ['before-tp', status.before?.true_peak_db], ['after-tp', status.after?.true_peak_db], ['before-lra', status.before?.lra], ['after-lra', status.after?.lra]]) {
    assert.ok(Number.isFinite(value), `status has ${sel}`);
    const shown = num(await page.locator(`[data-meter=${sel}]`).innerText());
    assert.ok(Math.abs(shown - value) <= 0.051, `${sel}: shown ${shown}, API ${value}`);
  }
  const widths = await page.locator('.meter-fill').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
  assert.equal(widths.length, 6);
  assert.ok(widths.every((w) => w > 0), `every meter bar is filled: ${widths.join(', ')}`);

  // The browser decoded both versions: pictures and A/B player are shown.
  await page.locator('#ab-player').waitFor({ state: 'visible', timeout: 60_000 });
  assert.ok(await page.locator('#viz').isVisible(), 'waveform and spectrum shown');
  const painted = await page.locator('#wave-after').evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) lit++;
    return lit / (c.width * c.height);
  });
  assert.ok(painted > 0.05, `after-waveform canvas is drawn (${(painted * 100).toFixed(1)} % pixels)`);

  // A/B: switching sides keeps the playback position.
  await page.getByRole('button', { name: /Play/ }).click();
  await page.waitForTimeout(800);
  const posBefore = Number(await page.locator('#seek').inputValue());
  await page.getByRole('button', { name: /A · Original/ }).click();
  assert.equal(await page.locator('#side-a').getAttribute('aria-pressed'), 'true');
  await page.waitForTimeout(300);
  const posAfter = Number(await page.locator('#seek').inputValue());
  assert.ok(posBefore > 0.2, `playback advanced (${posBefore} s)`);
  assert.ok(posAfter >= posBefore, `switching kept the position (${posBefore} → ${posAfter})`);
  await page.getByRole('button', { name: /Pause/ }).click();

  await screenshot(page, 'master-done', 'desktop');
  await page.setViewportSize(VIEWPORTS.phone);
  await page.waitForTimeout(400);
  await screenshot(page, 'master-done', 'phone');
  await page.setViewportSize(VIEWPORTS.desktop);

  // Download through the link, as a person would.
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const path = await download.path();
  const bytes = readFileSync(path);
  const magic = bytes.subarray(0, 4).toString('latin1');
  assert.ok(['RIFF', 'fLaC'].includes(magic) || magic.startsWith('ID3') || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0), `audio magic, got ${JSON.stringify(magic)}`);
  assert.match(download.suggestedFilename(), /^e2e_mix_mastered\.wav$/);
  assert.equal(magic, 'RIFF', 'default output is WAV');
  const wav = parseWav(bytes);
  assert.equal(wav.channels, 2);
  assert.equal(wav.bitsPerSample, 16, 'WAV default is 16-bit');
  assert.ok(Math.abs(wav.durationSec - SECONDS) <= 0.05, `duration ${wav.durationSec.toFixed(3)} s vs ${SECONDS} s`);
  const peak = wavPeak(bytes, wav);
  const ceiling = 10 ** ((status.true_peak_db ?? -1) / 20);
  assert.ok(peak > 0.05, `not silent (peak ${peak.toFixed(4)})`);
  assert.ok(peak <= ceiling + 2 / 32768, `sample peak ${peak.toFixed(4)} under the ${status.true_peak_db} dBTP ceiling (${ceiling.toFixed(4)})`);

  assert.deepEqual(pageErrors, [], 'no uncaught script errors');
  await ctx.close();
});

test('a file that is not audio gets a plain-words error', async () => {
  const junk = Buffer.from('this is a text file, not audio at all. '.repeat(40));
  // What the API answers (docs/API.md: 415 or 400 with a clear detail, checked before queueing) …
  const form = new FormData();
  form.append('file', new Blob([junk], { type: 'audio/wav' }), 'notes.wav');
  const direct = await fetch(`${api.base}/api/v2/master`, { method: 'POST', body: form });
  assert.ok([400, 415].includes(direct.status), `not-audio upload refused before queueing, got ${direct.status}`);
  const body = await direct.json();
  assert.ok(body.detail && body.code, 'error body has detail and code');

  // … and what the page makes of it.
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  const page = await ctx.newPage();
  await page.goto(`${api.base}/`);
  await page.locator('input[type=file]').setInputFiles({ name: 'notes.wav', mimeType: 'audio/wav', buffer: junk });
  await page.getByRole('button', { name: /Master/ }).click();
  const alert = page.locator('#job-error');
  await alert.waitFor({ state: 'visible', timeout: 30_000 });
  const text = await alert.locator('.alert-title').innerText();
  // The page words a known code its own way, else a 415 by status, else shows the 400's detail.
  const key = ERROR_CODE_KEYS[body.code] || (direct.status === 415 ? 'err.415' : null);
  const expected = key ? TEXTS.en[key] : body.detail;
  assert.equal(text, expected);
  assert.doesNotMatch(text, /^\s*\{|HTTP \d{3}|undefined|null/, `no raw JSON or codes in the headline: ${text}`);
  assert.ok(await page.locator('#results').isHidden(), 'no result section for a refused upload');
  await ctx.close();
});

test('the owner cancels a waiting job from the progress view and it never runs', async () => {
  // No worker: the job stays queued until it is cancelled.
  const idle = await startApi({ MAGIC_MASTER_EMBEDDED_WORKERS: '0' });
  const ctx = await browser.newContext({ viewport: VIEWPORTS.desktop, locale: 'en-US' });
  try {
    const page = await ctx.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${idle.base}/`);
    await page.locator('input[type=file]').setInputFiles({ name: 'wait.wav', mimeType: 'audio/wav', buffer: makeTestWav({ seconds: 2, sampleRate: RATE }) });
    await page.getByRole('button', { name: /Master/ }).click();
    const cancel = page.getByRole('button', { name: TEXTS.en['master.cancel'], exact: true });
    await cancel.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await page.locator('#stage-message').innerText(), new RegExp(TEXTS.en['master.queued']));
    await cancel.click();
    const notice = page.locator('#job-error');
    await notice.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await notice.locator('.alert-title').innerText(), TEXTS.en['master.cancelled']);
    assert.ok(await cancel.isHidden(), 'no Cancel button once the job has ended');
    assert.ok(await page.locator('#results').isHidden(), 'no result section for a cancelled job');
    const jobId = new URL(page.url()).searchParams.get('job');
    const status = await (await page.request.get(`${idle.base}/api/master/status/${jobId}`)).json();
    assert.equal(status.status, 'failed');
    assert.equal(status.error_code, 'cancelled');
    assert.equal(status.attempts, 0, 'it never ran');
    assert.deepEqual(pageErrors, [], 'no uncaught script errors');
  } finally {
    await ctx.close();
    await idle.stop();
  }
});
