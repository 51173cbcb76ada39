// The spectrum and waveform maths of web/assets/js/audio-viz.js, run in node on known signals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fft, averageSpectrum, envelope, SPECTRUM_MIN_HZ, SPECTRUM_MAX_HZ } from '../../web/assets/js/audio-viz.js';

/** Minimal AudioBuffer stand-in. */
function buffer(channels, sampleRate) {
  return { numberOfChannels: channels.length, length: channels[0].length, sampleRate, getChannelData: (c) => channels[c] };
}
const sine = (hz, amp, n, sr) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / sr));
const bandOf = (hz, bands) => Math.floor(((Math.log(hz) - Math.log(SPECTRUM_MIN_HZ)) / (Math.log(SPECTRUM_MAX_HZ) - Math.log(SPECTRUM_MIN_HZ))) * bands);

test('fft of a unit impulse is flat and of a cosine is two lines', () => {
  const n = 64;
  const re = new Float64Array(n), im = new Float64Array(n);
  re[0] = 1;
  fft(re, im);
  for (let k = 0; k < n; k++) assert.ok(Math.abs(re[k] - 1) < 1e-12 && Math.abs(im[k]) < 1e-12);
  const re2 = Float64Array.from({ length: n }, (_, i) => Math.cos((2 * Math.PI * 5 * i) / n)), im2 = new Float64Array(n);
  fft(re2, im2);
  for (let k = 0; k < n; k++) {
    const mag = Math.hypot(re2[k], im2[k]);
    assert.ok(k === 5 || k === n - 5 ? Math.abs(mag - n / 2) < 1e-9 : mag < 1e-9, `bin ${k}: ${mag}`);
  }
});

test('a full-scale 1 kHz sine reads 0 dB (±0.5) in its band and stays 60 dB lower two octaves away', () => {
  const sr = 48000, bands = 96;
  const spec = averageSpectrum(buffer([sine(1000, 1, sr * 2, sr)], sr), bands);
  const b = bandOf(1000, bands);
  assert.ok(Math.abs(spec[b]) <= 0.5, `1 kHz band: ${spec[b].toFixed(2)} dB`);
  assert.ok(spec[bandOf(250, bands)] < -60, `250 Hz band: ${spec[bandOf(250, bands)].toFixed(1)} dB`);
  assert.ok(spec[bandOf(4000, bands)] < -60, `4 kHz band: ${spec[bandOf(4000, bands)].toFixed(1)} dB`);
  // −20 dBFS reads 20 dB lower.
  const quiet = averageSpectrum(buffer([sine(1000, 0.1, sr * 2, sr)], sr), bands);
  assert.ok(Math.abs(quiet[b] - spec[b] + 20) <= 0.1, `level follows amplitude: ${quiet[b].toFixed(2)} dB`);
});

test('waveform envelope: peak and RMS per column', () => {
  const sr = 8000;
  const x = new Float32Array(sr);
  x.set(sine(100, 0.5, sr / 2, sr), 0); // first half: sine at 0.5, second half: silence
  const { peak, rms } = envelope(buffer([x, x], sr), 10);
  for (let c = 0; c < 5; c++) {
    assert.ok(Math.abs(peak[c] - 0.5) < 0.01, `column ${c} peak ${peak[c]}`);
    assert.ok(Math.abs(rms[c] - 0.5 / Math.SQRT2) < 0.01, `column ${c} rms ${rms[c]}`);
  }
  for (let c = 5; c < 10; c++) assert.equal(peak[c], 0);
});
