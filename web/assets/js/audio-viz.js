// Waveform and spectrum pictures drawn from decoded audio, and the A/B player (Web Audio).

const DECODE_RATE = 48000;

/** Decodes encoded audio bytes (any format the browser knows) into an AudioBuffer. */
export async function decodeAudio(arrayBuffer) {
  const Ctx = window.OfflineAudioContext || window.webkitOfflineAudioContext;
  if (!Ctx) throw new Error('Web Audio is not available');
  const ctx = new Ctx(2, 1, DECODE_RATE);
  return ctx.decodeAudioData(arrayBuffer);
}

/** Mono mix of all channels. */
function monoMix(buffer) {
  const n = buffer.length, chs = buffer.numberOfChannels;
  if (chs === 1) return buffer.getChannelData(0);
  const out = new Float32Array(n);
  for (let c = 0; c < chs; c++) {
    const d = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) out[i] += d[i] / chs;
  }
  return out;
}

/** Sizes a canvas to its CSS box times the device pixel ratio; returns its 2D context and size. */
function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(50, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(30, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, w, h);
  return { g, w, h, dpr };
}

/** Per-column peak and RMS envelopes of a buffer (max over channels), for `columns` columns. */
export function envelope(buffer, columns) {
  const n = buffer.length;
  const peak = new Float32Array(columns), rms = new Float32Array(columns);
  const chans = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) chans.push(buffer.getChannelData(c));
  for (let x = 0; x < columns; x++) {
    const a = Math.floor((x * n) / columns), b = Math.max(a + 1, Math.floor(((x + 1) * n) / columns));
    let p = 0, s = 0, cnt = 0;
    for (const d of chans) {
      for (let i = a; i < b && i < n; i++) { const v = Math.abs(d[i]); if (v > p) p = v; s += d[i] * d[i]; cnt++; }
    }
    peak[x] = p; rms[x] = cnt ? Math.sqrt(s / cnt) : 0;
  }
  return { peak, rms };
}

/**
 * Draws a waveform (peak envelope, RMS inside) on a ±1 full-scale axis, so before and after are
 * comparable; `ceilingDb` draws the true-peak ceiling as dashed lines.
 */
export function drawWaveform(canvas, buffer, color, ceilingDb = null) {
  const { g, w, h, dpr } = prepare(canvas);
  const mid = h / 2, amp = h / 2 - 2 * dpr;
  const { peak, rms } = envelope(buffer, w);
  g.fillStyle = 'rgba(255,255,255,.06)';
  g.fillRect(0, mid - 0.5, w, 1);
  g.globalAlpha = 0.45;
  g.fillStyle = color;
  for (let x = 0; x < w; x++) { const p = Math.min(1, peak[x]) * amp; g.fillRect(x, mid - p, 1, 2 * p || 1); }
  g.globalAlpha = 1;
  for (let x = 0; x < w; x++) { const r = Math.min(1, rms[x]) * amp; g.fillRect(x, mid - r, 1, 2 * r || 1); }
  if (ceilingDb !== null && Number.isFinite(ceilingDb)) {
    const y = Math.pow(10, ceilingDb / 20) * amp;
    g.strokeStyle = 'rgba(255,122,122,.8)';
    g.setLineDash([6 * dpr, 4 * dpr]);
    g.lineWidth = dpr;
    g.beginPath(); g.moveTo(0, mid - y); g.lineTo(w, mid - y); g.moveTo(0, mid + y); g.lineTo(w, mid + y); g.stroke();
    g.setLineDash([]);
  }
}

/** In-place iterative radix-2 FFT of (re, im), length a power of two. */
export function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len, wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k, b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
        const ncr = cr * wr - ci * wi; ci = cr * wi + ci * wr; cr = ncr;
      }
    }
  }
}

export const SPECTRUM_MIN_HZ = 20;
export const SPECTRUM_MAX_HZ = 20000;

/**
 * Long-term average spectrum as band power in dBFS on `bands` log-spaced bands from 20 Hz to
 * 20 kHz (like a 1/n-octave analyser: a full-scale sine reads 0 dB in its band, pink noise is
 * flat). Averages up to 160 Hann-windowed 4096-point frames spread over the whole file.
 */
export function averageSpectrum(buffer, bands = 96) {
  const N = 4096, x = monoMix(buffer), sr = buffer.sampleRate;
  const frames = Math.max(1, Math.min(160, Math.floor(x.length / N)));
  const hop = frames > 1 ? Math.floor((x.length - N) / (frames - 1)) : 0;
  const win = new Float64Array(N);
  for (let i = 0; i < N; i++) win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N);
  const power = new Float64Array(N / 2);
  const re = new Float64Array(N), im = new Float64Array(N);
  for (let f = 0; f < frames; f++) {
    const off = f * hop;
    for (let i = 0; i < N; i++) { re[i] = (x[off + i] || 0) * win[i]; im[i] = 0; }
    fft(re, im);
    for (let k = 0; k < N / 2; k++) power[k] += re[k] * re[k] + im[k] * im[k];
  }
  // Parseval: a sine of amplitude 1 puts N·Σw²/4 = 3N²/32 into the positive-frequency bins.
  const norm = ((3 * N * N) / 32) * frames;
  const out = new Float64Array(bands);
  const lo = Math.log(SPECTRUM_MIN_HZ), hi = Math.log(SPECTRUM_MAX_HZ);
  for (let b = 0; b < bands; b++) {
    const f0 = Math.exp(lo + ((hi - lo) * b) / bands), f1 = Math.exp(lo + ((hi - lo) * (b + 1)) / bands);
    const k0 = Math.min(Math.max(Math.round((f0 * N) / sr), 1), N / 2 - 1);
    const k1 = Math.min(Math.max(Math.round((f1 * N) / sr), k0 + 1), N / 2);
    let p = 0;
    for (let k = k0; k < k1; k++) p += power[k];
    out[b] = 10 * Math.log10(p / norm + 1e-12);
  }
  return out;
}

/** Draws one or more spectra ({data, color, label}) on a shared dB axis with a frequency grid. */
export function drawSpectrum(canvas, series) {
  const { g, w, h, dpr } = prepare(canvas);
  const all = series.flatMap((s) => Array.from(s.data)).filter(Number.isFinite);
  const top = Math.ceil((Math.max(...all) + 3) / 6) * 6, bottom = top - 72;
  const lo = Math.log(SPECTRUM_MIN_HZ), hi = Math.log(SPECTRUM_MAX_HZ);
  const xOf = (hz) => ((Math.log(hz) - lo) / (hi - lo)) * w;
  const yOf = (db) => ((top - Math.max(bottom, Math.min(top, db))) / (top - bottom)) * h;
  g.font = `${10 * dpr}px system-ui, sans-serif`;
  g.fillStyle = 'rgba(179,184,212,.8)';
  g.strokeStyle = 'rgba(255,255,255,.07)';
  g.lineWidth = dpr;
  for (const hz of [50, 100, 200, 500, 1000, 2000, 5000, 10000]) {
    const x = xOf(hz);
    g.beginPath(); g.moveTo(x, 0); g.lineTo(x, h); g.stroke();
    g.fillText(hz >= 1000 ? `${hz / 1000}k` : String(hz), x + 3 * dpr, h - 4 * dpr);
  }
  for (let db = top - 12; db > bottom; db -= 12) {
    const y = yOf(db);
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
    g.fillText(`${db} dB`.replace('-', '−'), 3 * dpr, y - 3 * dpr);
  }
  for (const s of series) {
    const n = s.data.length;
    g.strokeStyle = s.color; g.lineWidth = 2 * dpr;
    g.beginPath();
    for (let b = 0; b < n; b++) {
      const hz = Math.exp(lo + ((hi - lo) * (b + 0.5)) / n);
      const x = xOf(hz), y = yOf(s.data[b]);
      if (b === 0) g.moveTo(x, y); else g.lineTo(x, y);
    }
    g.stroke();
    g.globalAlpha = 0.12; g.fillStyle = s.color;
    g.lineTo(w, h); g.lineTo(0, h); g.closePath(); g.fill(); g.globalAlpha = 1;
  }
}

/**
 * A/B player: both versions play in sync through two gains; switching sides is a 10 ms crossfade,
 * so the position never jumps. `matchDb` lowers B to compare at equal loudness.
 */
export class ABPlayer {
  constructor(bufferA, bufferB, { onTick = () => {}, onEnded = () => {} } = {}) {
    this.a = bufferA; this.b = bufferB;
    this.duration = Math.min(bufferA.duration, bufferB.duration);
    this.side = 'b'; this.matchDb = 0;
    this.onTick = onTick; this.onEnded = onEnded;
    this.ctx = null; this.sources = []; this.playing = false; this.offset = 0; this.startedAt = 0;
  }

  ensureContext() {
    if (this.ctx) return;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    this.ctx = new Ctx();
    this.gainA = this.ctx.createGain(); this.gainB = this.ctx.createGain();
    this.gainA.connect(this.ctx.destination); this.gainB.connect(this.ctx.destination);
    this.applyGains(true);
  }

  applyGains(instant = false) {
    if (!this.ctx) return;
    const gA = this.side === 'a' ? 1 : 0;
    const gB = this.side === 'b' ? Math.pow(10, -this.matchDb / 20) : 0;
    const now = this.ctx.currentTime;
    if (instant) { this.gainA.gain.value = gA; this.gainB.gain.value = gB; return; }
    this.gainA.gain.setTargetAtTime(gA, now, 0.01);
    this.gainB.gain.setTargetAtTime(gB, now, 0.01);
  }

  get position() {
    if (!this.playing) return this.offset;
    return Math.min(this.duration, this.ctx.currentTime - this.startedAt);
  }

  async play() {
    this.ensureContext();
    if (this.ctx.state === 'suspended') await this.ctx.resume();
    if (this.playing) return;
    if (this.offset >= this.duration - 0.05) this.offset = 0;
    const when = this.ctx.currentTime + 0.03;
    this.sources = [[this.a, this.gainA], [this.b, this.gainB]].map(([buf, gain]) => {
      const src = this.ctx.createBufferSource();
      src.buffer = buf; src.connect(gain); src.start(when, this.offset);
      return src;
    });
    this.sources[1].onended = () => { if (this.playing && this.position >= this.duration - 0.1) { this.stopSources(); this.offset = 0; this.onEnded(); } };
    this.startedAt = when - this.offset;
    this.playing = true;
    const tick = () => { if (!this.playing) return; this.onTick(this.position); requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  }

  stopSources() {
    for (const s of this.sources) { try { s.onended = null; s.stop(); } catch { /* already stopped */ } }
    this.sources = []; this.playing = false;
  }

  pause() { if (!this.playing) return; this.offset = this.position; this.stopSources(); this.onTick(this.offset); }

  seek(sec) {
    const was = this.playing;
    if (was) this.stopSources();
    this.offset = Math.max(0, Math.min(this.duration, sec));
    this.onTick(this.offset);
    if (was) this.play();
  }

  setSide(side) { this.side = side; this.applyGains(); }
  setMatch(db) { this.matchDb = db; this.applyGains(); }
  close() { this.stopSources(); if (this.ctx) this.ctx.close(); this.ctx = null; }
}
