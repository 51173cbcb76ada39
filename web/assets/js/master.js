// The mastering page: upload, style, settings, live progress, meters, pictures, A/B player, download.
import {
  initPage, t, getLang, onLangChange, api, auth, ApiError, apiErrorFromText, showError, showMessage,
  clearMessage, fmtNum, fmtDate, fmtBytes, el, sleep, downloadWithAuth,
} from './common.js';
import { decodeAudio, drawWaveform, averageSpectrum, drawSpectrum, ABPlayer } from './audio-viz.js';

initPage('master');

const $ = (id) => document.getElementById(id);
const KNOWN_STYLES = ['standard', 'edm', 'hiphop', 'classical', 'podcast', 'lofi', 'house_basic', 'dry_vocal'];
const TERMINAL = ['done', 'failed'];

const state = {
  file: null, styles: [], style: 'standard', job: null, jobId: null, player: null,
  abort: null, buffers: null, spectra: null,
};

// ---------------------------------------------------------------- limits line
async function loadLimits() {
  const line = $('limits-line');
  try {
    const l = await api('/api/limits');
    if (l && l.daily_limit !== undefined && l.daily_limit !== null) {
      const key = l.tokens ? 'master.limitsTokens' : 'master.limitsGuest';
      line.textContent = t(key, { remaining: l.remaining ?? '—', limit: l.daily_limit, tokens: l.tokens ?? 0 });
      line.hidden = false;
    }
  } catch { line.hidden = true; /* limits are optional here: the upload answers 429 anyway */ }
}

// ---------------------------------------------------------------- file choice
function setFile(file) {
  if (!file) return;
  state.file = file;
  $('file-name').textContent = file.name;
  $('file-size').textContent = fmtBytes(file.size);
  $('file-info').hidden = false;
  clearMessage($('form-error'));
}

const dz = $('dropzone');
$('file-input').addEventListener('change', (e) => setFile(e.target.files[0]));
['dragenter', 'dragover'].forEach((ev) => dz.addEventListener(ev, (e) => { e.preventDefault(); dz.classList.add('dragover'); }));
['dragleave', 'dragend'].forEach((ev) => dz.addEventListener(ev, () => dz.classList.remove('dragover')));
dz.addEventListener('drop', (e) => {
  e.preventDefault();
  dz.classList.remove('dragover');
  const f = e.dataTransfer?.files?.[0];
  if (f) {
    try { const dt = new DataTransfer(); dt.items.add(f); $('file-input').files = dt.files; } catch { /* older browsers */ }
    setFile(f);
  }
});

// ---------------------------------------------------------------- styles
function normalizeStyles(data) {
  const list = Array.isArray(data) ? data : (data?.styles || []);
  return list.map((s) => (typeof s === 'string' ? { id: s } : {
    id: s.id || s.name || s.style || s.key,
    label: s.label || s.title || s.display_name || null,
    target: s.target_lufs ?? s.lufs ?? s.target ?? null,
    ceiling: s.true_peak_db ?? null,
    description: s.description || s.desc || '',
  })).filter((s) => s.id);
}

function styleName(s) { return KNOWN_STYLES.includes(s.id) ? t(`style.${s.id}`) : (s.label || s.id); }
function styleDesc(s) {
  if (getLang() === 'ru' && KNOWN_STYLES.includes(s.id)) return t(`style.${s.id}.d`);
  // The card shows the target already: drop a "(-14 LUFS)" the server may add to the text.
  const own = (s.description || '').replace(/\s*\(\s*[−-]?\d+(?:[.,]\d+)?\s*LUFS\s*\)/i, '');
  return own || (KNOWN_STYLES.includes(s.id) ? t(`style.${s.id}.d`) : '');
}

function renderStyles() {
  const box = $('style-cards');
  box.replaceChildren();
  for (const s of state.styles) {
    const checked = s.id === state.style;
    const card = el('button', {
      type: 'button', class: 'style-card', role: 'radio', 'aria-checked': String(checked),
      tabindex: checked ? '0' : '-1', 'data-style': s.id,
    },
    el('span', { class: 'style-name' }, el('span', {}, styleName(s)),
      s.target !== null ? el('span', { class: 'style-target' }, `${fmtNum(s.target, 0)} LUFS`) : null),
    el('span', { class: 'style-desc' }, styleDesc(s)));
    card.addEventListener('click', () => selectStyle(s.id, true));
    box.append(card);
  }
  updateLufsHint();
}

function selectStyle(id, focus = false) {
  state.style = id;
  for (const card of $('style-cards').children) {
    const on = card.dataset.style === id;
    card.setAttribute('aria-checked', String(on));
    card.tabIndex = on ? 0 : -1;
    if (on && focus) card.focus();
  }
  updateLufsHint();
}

$('style-cards').addEventListener('keydown', (e) => {
  const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  if (!(e.key in keys)) return;
  e.preventDefault();
  const ids = state.styles.map((s) => s.id);
  const i = (ids.indexOf(state.style) + keys[e.key] + ids.length) % ids.length;
  selectStyle(ids[i], true);
});

async function loadStyles() {
  try {
    state.styles = normalizeStyles(await api('/api/styles'));
    if (!state.styles.length) throw new Error('empty');
  } catch (err) {
    state.styles = KNOWN_STYLES.map((id) => ({ id, target: null, description: '' }));
    showMessage($('styles-note'), t('master.stylesFallback'), 'info');
    console.warn('styles', err);
  }
  if (!state.styles.some((s) => s.id === state.style)) state.style = state.styles[0].id;
  renderStyles();
}

// ---------------------------------------------------------------- advanced settings
function currentStyle() { return state.styles.find((s) => s.id === state.style) || {}; }

function updateLufsHint() {
  const target = currentStyle().target;
  $('target-lufs-hint').textContent = t('master.targetLufsHint', { v: target !== null && target !== undefined ? `${fmtNum(target, 1)} LUFS` : '—' });
  $('target-lufs').placeholder = target !== null && target !== undefined ? String(target) : '';
}

function updateFormatFields() {
  const fmt = $('out-format').value;
  const depth = $('bit-depth');
  $('mp3-field').hidden = fmt !== 'mp3';
  depth.disabled = fmt === 'mp3';
  $('bit-depth-hint').textContent = t(fmt === 'mp3' ? 'master.bitDepthMp3' : 'master.bitDepthHint');
  if (fmt === 'flac' && !depth.dataset.touched) depth.value = '24';
  if (fmt === 'wav' && !depth.dataset.touched) depth.value = '16';
}
$('out-format').addEventListener('change', updateFormatFields);
$('bit-depth').addEventListener('change', (e) => { e.target.dataset.touched = '1'; });

/** Checks one number field; returns {ok, value} and marks the field. */
function checkRange(input, errId, min, max, optional) {
  const raw = input.value.trim().replace(',', '.').replace('−', '-');
  let ok = true, value = null;
  if (raw === '') ok = optional;
  else { value = Number(raw); ok = Number.isFinite(value) && value >= min && value <= max; }
  input.setAttribute('aria-invalid', String(!ok));
  $(errId).hidden = ok;
  return { ok, value };
}
$('target-lufs').addEventListener('input', () => checkRange($('target-lufs'), 'target-lufs-err', -30, -5, true));
$('ceiling').addEventListener('input', () => checkRange($('ceiling'), 'ceiling-err', -9, 0, true));

// ---------------------------------------------------------------- upload
function uploadForm(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v2/master');
    const tk = auth.token();
    if (tk) xhr.setRequestHeader('Authorization', `Bearer ${tk}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) setUpload((e.loaded / e.total) * 100); };
    xhr.upload.onload = () => setUpload(100);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new ApiError(xhr.status, 'bad-response', xhr.responseText.slice(0, 200))); }
      } else reject(apiErrorFromText(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After')));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'upload failed'));
    xhr.onabort = () => reject(new ApiError(0, 'network', 'upload aborted'));
    xhr.send(form);
  });
}

function setUpload(pct) {
  $('upload-progress').value = pct;
  $('upload-pct').textContent = `${Math.round(pct)}%`;
}

function setJobProgress(s) {
  const pct = s.status === 'done' ? 100 : Math.max(0, Math.min(100, Number(s.progress) || 0));
  $('job-progress').value = pct;
  $('job-pct').textContent = `${Math.round(pct)}%`;
  const cancelled = s.error_code === 'cancelled';
  const word = s.status === 'queued' ? t('master.queued') : s.status === 'done' ? t('master.doneMsg') : cancelled ? t('master.cancelled') : s.status === 'failed' ? t('err.failed') : t('master.running');
  $('stage-message').textContent = s.message && s.status === 'running' ? `${word} ${s.message}` : word;
  // The owner may cancel while the job waits or runs (POST /api/master/cancel/{id}).
  $('cancel-btn').hidden = !state.jobId || TERMINAL.includes(s.status);
}

$('cancel-btn').addEventListener('click', async () => {
  const btn = $('cancel-btn');
  if (!state.jobId) return;
  btn.disabled = true;
  try {
    const s = await api(`/api/master/cancel/${encodeURIComponent(state.jobId)}`, { method: 'POST' });
    setJobProgress(s);
    if (s.status === 'running') $('stage-message').textContent = t('master.cancelling');
  } catch (err) {
    showError($('job-error'), err);
  } finally {
    btn.disabled = false;
  }
});

$('master-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const errBox = $('form-error');
  clearMessage(errBox);
  if (!state.file) { showMessage(errBox, t('master.noFile'), 'error'); $('file-input').focus(); return; }
  const lufs = checkRange($('target-lufs'), 'target-lufs-err', -30, -5, true);
  const ceil = checkRange($('ceiling'), 'ceiling-err', -9, 0, true);
  if (!lufs.ok || !ceil.ok) { $('advanced').open = true; showMessage(errBox, t('master.fixFields'), 'error'); return; }

  const form = new FormData();
  form.append('file', state.file, state.file.name);
  form.append('style', state.style);
  if (lufs.value !== null) form.append('target_lufs', String(lufs.value));
  if (ceil.value !== null) form.append('true_peak_db', String(ceil.value));
  const fmt = $('out-format').value;
  form.append('out_format', fmt);
  if (fmt === 'mp3') form.append('mp3_bitrate', $('mp3-bitrate').value);
  else form.append('bit_depth', $('bit-depth').value);

  resetResults();
  $('master-btn').disabled = true;
  $('progress-section').hidden = false;
  setUpload(0);
  setJobProgress({ status: 'queued', progress: 0 });
  try {
    const created = await uploadForm(form);
    state.jobId = created.job_id;
    history.replaceState(null, '', `/?job=${encodeURIComponent(created.job_id)}`);
    await followJob(created.job_id);
  } catch (err) {
    showError($('job-error'), err);
    $('progress-section').hidden = true;
  } finally {
    $('master-btn').disabled = false;
    loadLimits();
  }
});

// ---------------------------------------------------------------- following a job
/** Reads the SSE stream with fetch (so the Authorization header goes along). Resolves with the final status. */
async function streamProgress(id, onStatus, signal) {
  const res = await fetch(`/api/master/progress/${encodeURIComponent(id)}`, {
    headers: { Accept: 'text/event-stream', ...auth.headers() }, signal, credentials: 'same-origin',
  });
  if (!res.ok || !res.body) throw apiErrorFromText(res.status, await res.text().catch(() => ''), null);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut;
    while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;
      let s;
      try { s = JSON.parse(data); } catch { continue; }
      onStatus(s);
      if (TERMINAL.includes(s.status)) { reader.cancel().catch(() => {}); return s; }
    }
  }
  throw new Error('stream ended early');
}

/** Polls the status route once a second until the job ends. */
async function pollStatus(id, onStatus, signal) {
  let failures = 0;
  for (;;) {
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
    try {
      const s = await api(`/api/master/status/${encodeURIComponent(id)}`, { signal });
      failures = 0;
      onStatus(s);
      if (TERMINAL.includes(s.status)) return s;
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      if (err instanceof ApiError && [401, 403, 404, 410].includes(err.status)) throw err;
      if (++failures > 20) throw new ApiError(0, 'network', t('err.lostTrack'));
    }
    await sleep(1000);
  }
}

async function followJob(id) {
  state.abort?.abort();
  const ctrl = new AbortController();
  state.abort = ctrl;
  const onStatus = (s) => { state.job = s; setJobProgress(s); };
  let final;
  try {
    final = await streamProgress(id, onStatus, ctrl.signal);
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err instanceof ApiError && [401, 403, 404, 410].includes(err.status)) throw err;
    final = await pollStatus(id, onStatus, ctrl.signal); // SSE not available: fall back to polling
  }
  if (final.status === 'failed' && final.error_code === 'cancelled') {
    showMessage($('job-error'), t('master.cancelled'), 'info');
    return;
  }
  if (final.status === 'failed') {
    const err = new ApiError(422, 'job-failed', final.error || '');
    showJobFailed(err);
    return;
  }
  showResults(final);
}

function showJobFailed(err) {
  const box = $('job-error');
  box.className = 'alert alert-error';
  box.replaceChildren(el('p', { class: 'alert-title' }, t('err.failed')), el('p', {}, t('err.failedHint')));
  if (err.detail) box.append(el('details', {}, el('summary', {}, t('common.details')), el('div', { class: 'mono' }, err.detail)));
  box.hidden = false;
}

// ---------------------------------------------------------------- results
function resetResults() {
  state.player?.close();
  state.player = null; state.buffers = null; state.spectra = null; state.job = null; state.jobId = null;
  $('results').hidden = true;
  $('download-link')?.remove();
  $('viz').hidden = true;
  $('ab-player').hidden = true;
  clearMessage($('job-error'));
}

const METERS = [
  { key: 'lufs', label: 'master.lufs', unit: 'LUFS', min: -40, max: 0, field: 'lufs' },
  { key: 'tp', label: 'master.tp', unit: 'dBTP', min: -24, max: 3, field: 'true_peak_db' },
  { key: 'lra', label: 'master.lra', unit: 'LU', min: 0, max: 20, field: 'lra' },
];

/** A meter's coloured fill; the width goes through CSSOM (allowed under a strict CSP). */
function fillBar(which, pct) {
  const bar = el('div', { class: `meter-fill ${which}` });
  requestAnimationFrame(() => { bar.style.width = `${pct}%`; });
  return bar;
}

function meterRow(which, m, v) {
  const pct = v === null || v === undefined ? 0 : Math.max(0, Math.min(100, ((v - m.min) / (m.max - m.min)) * 100));
  const label = t(which === 'before' ? 'master.before' : 'master.after');
  return el('div', { class: 'meter-row' },
    el('span', {}, label),
    el('div', {
      class: 'meter-bar', role: 'meter', 'aria-label': `${t(m.label)}: ${label}`, 'aria-valuemin': m.min, 'aria-valuemax': m.max,
      'aria-valuenow': v ?? m.min, 'aria-valuetext': `${fmtNum(v)} ${m.unit}`,
    }, fillBar(which, pct)),
    el('span', { class: 'meter-value', 'data-meter': `${which}-${m.key}` }, v === null || v === undefined ? '—' : `${fmtNum(v)} ${m.unit}`));
}

function renderMeters() {
  const s = state.job;
  if (!s) return;
  const before = s.before || { lufs: s.before_lufs };
  const after = s.after || { lufs: s.after_lufs };
  const box = $('meters');
  box.replaceChildren();
  for (const m of METERS) {
    let note = '';
    if (m.key === 'lufs' && s.target_lufs !== undefined && s.target_lufs !== null) note = t('master.target', { v: fmtNum(s.target_lufs) });
    if (m.key === 'tp' && s.true_peak_db !== undefined && s.true_peak_db !== null) note = t('master.ceilingShort', { v: fmtNum(s.true_peak_db) });
    box.append(el('div', { class: 'meter' },
      el('h3', {}, el('span', {}, t(m.label)), el('span', { class: 'small muted' }, note)),
      meterRow('before', m, before[m.field] ?? null),
      meterRow('after', m, after[m.field] ?? null)));
  }
}

function renderDoneTexts() {
  const s = state.job;
  if (!s) return;
  const fmt = (s.out_format || $('out-format').value || 'wav').toUpperCase();
  const link = $('download-link');
  if (link) link.textContent = t('master.download', { fmt });
  $('done-message').textContent = t('master.doneMsg');
  $('expires-note').textContent = s.expires_at ? t('master.expires', { t: fmtDate(s.expires_at) }) : '';
}

function showResults(s) {
  state.job = s;
  const id = s.job_id || state.jobId;
  state.jobId = id;
  $('download-link')?.remove();
  // The link exists only once the file is ready, so nobody can follow a link to nothing.
  const link = el('a', { id: 'download-link', class: 'btn btn-primary', href: `/api/master/result/${encodeURIComponent(id)}`, download: '' });
  link.addEventListener('click', onDownloadClick);
  document.querySelector('.download-row').prepend(link);
  renderDoneTexts();
  renderMeters();
  $('results').hidden = false;
  $('progress-section').hidden = false;
  setJobProgress(s);
  loadVisuals(id);
}

async function onDownloadClick(e) {
  if (!auth.token()) return; // guests: a plain link; the session cookie/IP identifies the job
  e.preventDefault();
  const note = $('expires-note');
  const before = note.textContent;
  note.textContent = t('master.downloading');
  try { await downloadWithAuth(e.currentTarget.getAttribute('href'), 'mastered'); }
  catch (err) { showError($('job-error'), err); }
  finally { note.textContent = before; }
}

$('again-btn').addEventListener('click', () => {
  resetResults();
  state.abort?.abort();
  $('progress-section').hidden = true;
  history.replaceState(null, '', '/');
  window.scrollTo({ top: 0, behavior: 'smooth' });
  $('file-input').focus();
});

// ---------------------------------------------------------------- pictures and player
async function fetchPreview(id, src) {
  const res = await api(`/api/master/preview/${encodeURIComponent(id)}?src=${src}`, { raw: true });
  return decodeAudio(await res.arrayBuffer());
}

async function loadVisuals(id) {
  const status = $('viz-status');
  status.textContent = t('master.vizLoading');
  try {
    const original = state.file
      ? decodeAudio(await state.file.arrayBuffer()).catch(() => fetchPreview(id, 'original'))
      : fetchPreview(id, 'original');
    const [a, b] = await Promise.all([original, fetchPreview(id, 'mastered')]);
    state.buffers = { a, b };
    state.spectra = { a: averageSpectrum(a), b: averageSpectrum(b) };
    $('viz').hidden = false;
    drawVisuals();
    setupPlayer(a, b);
    status.textContent = '';
  } catch (err) {
    console.warn('visuals', err);
    status.textContent = t('master.vizFailed');
  }
}

function drawVisuals() {
  if (!state.buffers) return;
  const ceiling = state.job?.true_peak_db ?? null;
  drawWaveform($('wave-before'), state.buffers.a, '#f4a261', ceiling);
  drawWaveform($('wave-after'), state.buffers.b, '#45d6c5', ceiling);
  drawSpectrum($('spectrum'), [
    { data: state.spectra.a, color: '#f4a261' },
    { data: state.spectra.b, color: '#45d6c5' },
  ]);
}
let resizeTimer;
window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawVisuals, 150); });

const fmtTime = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

function setupPlayer(a, b) {
  const seek = $('seek');
  const player = new ABPlayer(a, b, {
    onTick: (pos) => { seek.value = String(pos); $('time-display').textContent = `${fmtTime(pos)} / ${fmtTime(player.duration)}`; },
    onEnded: () => { $('play-btn').textContent = t('master.play'); seek.value = '0'; },
  });
  state.player = player;
  seek.max = String(player.duration);
  seek.value = '0';
  $('time-display').textContent = `0:00 / ${fmtTime(player.duration)}`;
  setSide('b');
  $('match-loudness').checked = false;
  $('play-btn').textContent = t('master.play');
  $('ab-player').hidden = false;
}

function setSide(side) {
  state.player?.setSide(side);
  $('side-a').setAttribute('aria-pressed', String(side === 'a'));
  $('side-b').setAttribute('aria-pressed', String(side === 'b'));
}

$('play-btn').addEventListener('click', async () => {
  const p = state.player;
  if (!p) return;
  if (p.playing) { p.pause(); $('play-btn').textContent = t('master.play'); }
  else { await p.play(); $('play-btn').textContent = t('master.pause'); }
});
$('side-a').addEventListener('click', () => setSide('a'));
$('side-b').addEventListener('click', () => setSide('b'));
$('seek').addEventListener('input', (e) => state.player?.seek(Number(e.target.value)));
$('match-loudness').addEventListener('change', (e) => {
  const s = state.job;
  const gain = s ? (s.after?.lufs ?? s.after_lufs) - (s.before?.lufs ?? s.before_lufs) : 0;
  state.player?.setMatch(e.target.checked && Number.isFinite(gain) ? gain : 0);
});

// ---------------------------------------------------------------- language switch and start
onLangChange(() => {
  renderStyles();
  updateFormatFields();
  loadLimits();
  if (state.job && !$('results').hidden) { renderMeters(); renderDoneTexts(); }
  if (state.job && !$('progress-section').hidden) setJobProgress(state.job);
  if (state.player) $('play-btn').textContent = t(state.player.playing ? 'master.pause' : 'master.play');
});

updateFormatFields();
loadStyles();
loadLimits();

// Resume a job after a page refresh (/?job=ID).
const resumeId = new URLSearchParams(location.search).get('job');
if (resumeId) {
  state.jobId = resumeId;
  $('progress-section').hidden = false;
  setUpload(100);
  followJob(resumeId).catch((err) => { showError($('job-error'), err); $('progress-section').hidden = true; });
}
