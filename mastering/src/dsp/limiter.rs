//! Look-ahead true-peak limiter with oversampled peak detection.
//!
//! # How it works
//!
//! 1. **Detection.** Each input frame is oversampled with the same polyphase interpolator the
//!    `ebur128` meter uses (a Hann-windowed sinc, 48 coefficients: 4 phases × 12 taps below
//!    96 kHz, 2 phases × 24 taps from 96 kHz up; phase 0 is the sample itself). The
//!    per-frame peak is the largest magnitude over all channels and phases. Chunks whose
//!    samples are so low that no interpolated value can reach the ceiling (bounded by the
//!    sum of the absolute filter coefficients) skip the interpolation.
//! 2. **Required gain** `r = min(1, ceiling / peak)` per frame.
//! 3. **Hold.** A sliding minimum of `r` over a hold window (≥ look-ahead, default 25 ms),
//!    computed with a monotonic deque (O(1) amortised per frame). Holding for longer than a
//!    half-period of a 20 Hz tone keeps the gain constant under a sustained low-frequency
//!    tone, so the limiter does not modulate (distort) bass.
//! 4. **Release.** After the hold, the gain recovers with a one-pole release (time constant
//!    from the style, ≥ 50 ms). Attack is instantaneous at this point.
//! 5. **Smooth attack.** Two cascaded moving averages (box filters) spanning the look-ahead
//!    turn every gain drop into an S-shaped ramp that *ends* before the peak reaches the
//!    output.
//! 6. **Delay.** The audio is delayed by the look-ahead, `latency()` frames.
//!
//! # The guarantee
//!
//! The hold window covers the whole look-ahead plus the interpolator's support, so every
//! output sample that contributes to an oversampled peak is multiplied by a gain no larger
//! than that peak's required gain: the output's true peak, as `ebur128` measures it, stays
//! at or below the ceiling. Gain varying *within* the interpolator's 12-sample support can
//! move an interpolated value by a hair, so the limiter aims [`SAFETY_MARGIN_DB`] below the
//! requested ceiling. Inputs must be finite (the DC stage removes NaN and infinities).
//!
//! `process` never allocates; all buffers are sized in `new`.

use super::{DspError, check_format, check_range, db_to_lin};
use crate::stage::BlockProcessor;
use std::f64::consts::PI;

/// The limiter aims this far below the requested ceiling, dB, to absorb the effect of gain
/// changes inside the interpolator's support and `f32` rounding.
pub const SAFETY_MARGIN_DB: f64 = 0.05;

/// Frames processed per internal chunk (sizes the scratch buffers).
const CHUNK: usize = 256;

/// Total coefficients of the oversampling interpolator (as in `ebur128`).
const INTERP_COEFFS: usize = 48;

/// Limiter settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimiterSettings {
    /// True-peak ceiling, dBTP, -20..=0.
    pub ceiling_dbtp: f64,
    /// Look-ahead (and latency), ms, 1..=10.
    pub lookahead_ms: f64,
    /// Hold time of the gain before release, ms, 0..=200 (raised to the look-ahead plus
    /// the interpolator's support when shorter).
    pub hold_ms: f64,
    /// Release time constant, ms, 10..=2000.
    pub release_ms: f64,
}

impl LimiterSettings {
    /// Defaults for a ceiling: 3 ms look-ahead, 25 ms hold, 150 ms release.
    pub fn with_ceiling(ceiling_dbtp: f64) -> Self {
        LimiterSettings {
            ceiling_dbtp,
            lookahead_ms: 3.0,
            hold_ms: 25.0,
            release_ms: 150.0,
        }
    }
}

/// Sliding-window minimum of the required gain over the last `window` frames (monotonic
/// deque in a fixed ring). Frames whose required gain is exactly 1.0 are never pushed:
/// an empty window means 1.0, which keeps quiet passages cheap.
#[derive(Debug, Clone)]
struct SlidingMin {
    window: u64,
    idx: Vec<u64>,
    val: Vec<f32>,
    head: usize,
    len: usize,
}

impl SlidingMin {
    fn new(window: usize) -> Self {
        SlidingMin {
            window: window as u64,
            idx: vec![0; window + 1],
            val: vec![0.0; window + 1],
            head: 0,
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    #[inline]
    fn wrap(&self, i: usize) -> usize {
        if i >= self.idx.len() {
            i - self.idx.len()
        } else {
            i
        }
    }

    /// Adds value `v < 1` at position `i` (positions strictly increase).
    #[inline]
    fn push(&mut self, i: u64, v: f32) {
        // Drop values at the back that can never be the minimum again.
        while self.len > 0 {
            let back = self.wrap(self.head + self.len - 1);
            if self.val[back] >= v {
                self.len -= 1;
            } else {
                break;
            }
        }
        // The ring holds at most `window` live entries plus the new one.
        let slot = self.wrap(self.head + self.len);
        self.idx[slot] = i;
        self.val[slot] = v;
        self.len += 1;
    }

    /// The minimum over positions `i - window + 1 ..= i` (1.0 when none was pushed).
    #[inline]
    fn min_at(&mut self, i: u64) -> f32 {
        while self.len > 0 && self.idx[self.head] + self.window <= i {
            self.head = self.wrap(self.head + 1);
            self.len -= 1;
        }
        if self.len > 0 {
            self.val[self.head]
        } else {
            1.0
        }
    }

    fn is_empty_at(&mut self, i: u64) -> bool {
        self.min_at(i) >= 1.0
    }
}

/// Moving average over the last `len` values, starting full of 1.0 (unity gain).
#[derive(Debug, Clone)]
struct MovingAverage {
    ring: Vec<f64>,
    pos: usize,
    sum: f64,
    inv_len: f64,
    /// Consecutive exact 1.0 values pushed; once it reaches `len` the average is exactly 1.
    unity_run: usize,
}

impl MovingAverage {
    fn new(len: usize) -> Self {
        MovingAverage {
            ring: vec![1.0; len],
            pos: 0,
            sum: len as f64,
            inv_len: 1.0 / len as f64,
            unity_run: len,
        }
    }

    fn clear(&mut self) {
        self.ring.fill(1.0);
        self.pos = 0;
        self.sum = self.ring.len() as f64;
        self.unity_run = self.ring.len();
    }

    /// True when every value in the window is 1.0 (the average is exactly 1.0).
    fn is_unity(&self) -> bool {
        self.unity_run >= self.ring.len()
    }

    #[inline]
    fn push(&mut self, v: f64) -> f64 {
        self.sum += v - self.ring[self.pos];
        self.ring[self.pos] = v;
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
            // Re-sum once per lap so rounding never accumulates.
            self.sum = self.ring.iter().sum();
        }
        if v == 1.0 {
            self.unity_run += 1;
            if self.unity_run == self.ring.len() {
                self.sum = self.ring.len() as f64;
            }
        } else {
            self.unity_run = 0;
        }
        if self.is_unity() {
            1.0
        } else {
            self.sum * self.inv_len
        }
    }
}

/// Look-ahead true-peak limiter; see the module documentation.
#[derive(Debug, Clone)]
pub struct TruePeakLimiter {
    channels: usize,
    ceiling_dbtp: f64,
    /// Linear ceiling the detector aims at (requested ceiling minus the safety margin).
    threshold: f32,
    /// Interpolator taps per phase.
    taps: usize,
    /// The interpolator's phases 1..factor.
    interp: Interpolator,
    /// Largest sum of absolute coefficients over the phases (and 1.0 for phase 0).
    coeff_bound: f32,
    /// Per channel: the last `taps - 1` input samples followed by the current chunk.
    history: Vec<Vec<f32>>,
    /// Per channel: the last `delay` input samples followed by the current chunk.
    delay_line: Vec<Vec<f32>>,
    delay: usize,
    peak: Vec<f32>,
    gain: Vec<f32>,
    hold: SlidingMin,
    release_coef: f64,
    envelope: f64,
    smooth1: MovingAverage,
    smooth2: MovingAverage,
    position: u64,
    min_gain: f32,
}

impl TruePeakLimiter {
    /// Builds a limiter for `channels` channels at `sample_rate` Hz.
    pub fn new(
        sample_rate: u32,
        channels: usize,
        settings: &LimiterSettings,
    ) -> Result<Self, DspError> {
        check_format(sample_rate, channels)?;
        let ceiling = check_range("limiter ceiling_dbtp", settings.ceiling_dbtp, -20.0, 0.0)?;
        let lookahead = check_range("limiter lookahead_ms", settings.lookahead_ms, 1.0, 10.0)?;
        let hold_ms = check_range("limiter hold_ms", settings.hold_ms, 0.0, 200.0)?;
        let release_ms = check_range("limiter release_ms", settings.release_ms, 10.0, 2000.0)?;
        let rate = f64::from(sample_rate);

        let factor = if sample_rate < 96_000 { 4 } else { 2 };
        let taps = INTERP_COEFFS / factor;
        let phases = interpolator_phases(factor);
        let coeff_bound = phases
            .iter()
            .map(|p| p.iter().map(|c| c.abs()).sum::<f32>())
            .fold(1.0f32, f32::max);
        let interp = Interpolator::from_phases(&phases)?;

        // Delay = smoothing span (two boxes) + interpolator support; see the module docs.
        let delay = ((lookahead * rate / 1000.0).round() as usize).max(taps + 3);
        let smoothing = delay - (taps - 1); // = w1 + w2 - 2
        let w1 = (smoothing + 2).div_ceil(2);
        let w2 = smoothing + 2 - w1;
        let hold_len = ((hold_ms * rate / 1000.0).round() as usize).max(delay + 1);

        Ok(TruePeakLimiter {
            channels,
            ceiling_dbtp: ceiling,
            threshold: db_to_lin(ceiling - SAFETY_MARGIN_DB) as f32,
            taps,
            interp,
            coeff_bound,
            history: vec![vec![0.0; taps - 1 + CHUNK]; channels],
            delay_line: vec![vec![0.0; delay + CHUNK]; channels],
            delay,
            peak: vec![0.0; CHUNK],
            gain: vec![1.0; CHUNK],
            hold: SlidingMin::new(hold_len),
            release_coef: (-1.0 / (release_ms * rate / 1000.0)).exp(),
            envelope: 1.0,
            smooth1: MovingAverage::new(w1),
            smooth2: MovingAverage::new(w2),
            position: 0,
            min_gain: 1.0,
        })
    }

    /// The requested true-peak ceiling, dBTP.
    pub fn ceiling_dbtp(&self) -> f64 {
        self.ceiling_dbtp
    }

    /// The deepest gain reduction applied since construction or [`reset`](Self::reset), dB
    /// (0 or positive).
    pub fn max_gain_reduction_db(&self) -> f64 {
        -20.0 * f64::from(self.min_gain).log10()
    }

    /// Detects, computes gains and applies them for one chunk of `n ≤ CHUNK` frames
    /// starting at `offset` in `block`.
    fn process_chunk(&mut self, block: &mut [Vec<f32>], offset: usize, n: usize) {
        let keep = self.taps - 1;
        let skip_level = self.threshold / self.coeff_bound;
        self.peak[..n].fill(0.0);

        for (ch, samples) in block.iter().enumerate().take(self.channels) {
            let hist = &mut self.history[ch];
            hist[keep..keep + n].copy_from_slice(&samples[offset..offset + n]);
            match &self.interp {
                Interpolator::Four(c) => detect(c, hist, n, &mut self.peak, skip_level),
                Interpolator::Two(c) => detect(c, hist, n, &mut self.peak, skip_level),
            }
            hist.copy_within(n..n + keep, 0);
        }

        let chunk_over = self.peak[..n].iter().any(|&p| p > self.threshold);
        let idle = !chunk_over
            && self.envelope == 1.0
            && self.smooth1.is_unity()
            && self.smooth2.is_unity()
            && self.hold.is_empty_at(self.position);
        if idle {
            // Nothing to limit and no gain reduction in flight: unity gain.
            self.gain[..n].fill(1.0);
            self.position += n as u64;
        } else {
            self.compute_gains(n);
        }

        // Apply to the delayed audio.
        let delay = self.delay;
        for (ch, samples) in block.iter_mut().enumerate().take(self.channels) {
            let line = &mut self.delay_line[ch];
            let out = &mut samples[offset..offset + n];
            line[delay..delay + n].copy_from_slice(out);
            if idle {
                out.copy_from_slice(&line[..n]);
            } else {
                for ((o, &x), &g) in out.iter_mut().zip(&line[..n]).zip(&self.gain[..n]) {
                    *o = x * g;
                }
            }
            line.copy_within(n..n + delay, 0);
        }
    }

    /// Gain computer for `n` frames of `self.peak`: required gain → hold (sliding min) →
    /// release → two moving averages, into `self.gain`.
    fn compute_gains(&mut self, n: usize) {
        for i in 0..n {
            let p = self.peak[i];
            if p > self.threshold {
                self.hold.push(self.position, self.threshold / p);
            }
            let held = f64::from(self.hold.min_at(self.position));
            self.position += 1;
            self.envelope = if held < self.envelope {
                held
            } else {
                let released = held + (self.envelope - held) * self.release_coef;
                // Snap the last 1e-7 of a full release to exact unity (an idle state).
                if held == 1.0 && released > 1.0 - 1e-7 {
                    1.0
                } else {
                    released
                }
            };
            let smooth = self.smooth2.push(self.smooth1.push(self.envelope));
            let g = smooth as f32;
            if g < self.min_gain {
                self.min_gain = g;
            }
            self.gain[i] = g;
        }
    }
}

/// Frames handled together by the detector (its accumulators stay in registers).
const TILE: usize = 8;

/// `max` without NaN handling (compiles to one `maxss`/`maxps`); inputs are finite.
#[inline(always)]
fn fast_max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// Phases 1..factor of the oversampling interpolator as fixed-size arrays.
#[derive(Debug, Clone)]
enum Interpolator {
    /// 4× oversampling: three phases of 12 taps (below 96 kHz).
    Four([[f32; 12]; 3]),
    /// 2× oversampling: one phase of 24 taps (96 kHz and up).
    Two([[f32; 24]; 1]),
}

impl Interpolator {
    fn from_phases(phases: &[Vec<f32>]) -> Result<Self, DspError> {
        fn arrays<const T: usize, const P: usize>(phases: &[Vec<f32>]) -> Option<[[f32; T]; P]> {
            let mut out = [[0.0f32; T]; P];
            if phases.len() != P {
                return None;
            }
            for (dst, src) in out.iter_mut().zip(phases) {
                *dst = src.as_slice().try_into().ok()?;
            }
            Some(out)
        }
        arrays::<12, 3>(phases)
            .map(Interpolator::Four)
            .or_else(|| arrays::<24, 1>(phases).map(Interpolator::Two))
            .ok_or_else(|| DspError::Parameter("unsupported oversampling factor".into()))
    }
}

/// Oversampled peak detection of one channel. `hist` holds `T - 1` past samples followed by
/// the chunk's `n` samples (and room up to a whole number of tiles); `peak[i]` is raised to
/// the largest magnitude of frame `i`'s phase-0 sample and interpolated values. Tiles whose
/// samples are all at or below `skip_level` cannot reach the ceiling and are skipped.
#[inline]
fn detect<const T: usize, const P: usize>(
    coeffs: &[[f32; T]; P],
    hist: &[f32],
    n: usize,
    peak: &mut [f32],
    skip_level: f32,
) {
    let keep = T - 1;
    let centre = T / 2;
    let mut i = 0;
    while i < n {
        let Some(window) = hist.get(i..i + keep + TILE) else {
            break;
        };
        let loud = window
            .iter()
            .fold(false, |any, v| any | (v.abs() > skip_level));
        if loud {
            let mut acc = [[0.0f32; TILE]; P];
            for t in 0..T {
                let Ok(src) = <&[f32; TILE]>::try_from(&window[keep - t..keep - t + TILE]) else {
                    continue;
                };
                for (a, c) in acc.iter_mut().zip(coeffs) {
                    let c = c[t];
                    for l in 0..TILE {
                        a[l] += c * src[l];
                    }
                }
            }
            let mut m = [0.0f32; TILE];
            for (m, x) in m.iter_mut().zip(&window[keep - centre..]) {
                *m = x.abs();
            }
            for a in &acc {
                for (m, v) in m.iter_mut().zip(a) {
                    *m = fast_max(*m, v.abs());
                }
            }
            let frames = TILE.min(n - i);
            for (p, &m) in peak[i..i + frames].iter_mut().zip(&m) {
                *p = fast_max(*p, m);
            }
        }
        i += TILE;
    }
}

impl BlockProcessor for TruePeakLimiter {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        let len = block.iter().map(Vec::len).min().unwrap_or(0);
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(CHUNK);
            self.process_chunk(block, offset, n);
            offset += n;
        }
    }

    /// The look-ahead, frames.
    fn latency(&self) -> usize {
        self.delay
    }

    fn reset(&mut self) {
        for h in &mut self.history {
            h.fill(0.0);
        }
        for d in &mut self.delay_line {
            d.fill(0.0);
        }
        self.hold.clear();
        self.envelope = 1.0;
        self.smooth1.clear();
        self.smooth2.clear();
        self.position = 0;
        self.min_gain = 1.0;
    }
}

/// The `ebur128` true-peak interpolator (Hann-windowed sinc over 48 coefficients), split
/// into its phases 1..factor (phase 0 is a unit impulse at the centre tap).
fn interpolator_phases(factor: usize) -> Vec<Vec<f32>> {
    let taps = INTERP_COEFFS / factor;
    let window = INTERP_COEFFS as f64;
    (1..factor)
        .map(|k| {
            (0..taps)
                .map(|t| {
                    let j = (t * factor + k) as f64;
                    let w = 0.5 * (1.0 - (2.0 * PI * j / window).cos());
                    let m = j - window / 2.0;
                    let x = m * PI / factor as f64;
                    (w * x.sin() / x) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::{
        TestRng, loudness_and_true_peak, music_like, run_stage, sine, thd_n_percent,
    };

    fn limit(input: &[Vec<f32>], rate: u32, ceiling: f64, block: usize) -> Vec<Vec<f32>> {
        let mut lim =
            TruePeakLimiter::new(rate, input.len(), &LimiterSettings::with_ceiling(ceiling))
                .unwrap();
        run_stage(&mut lim, input, block, true)
    }

    fn assert_under(out: &[Vec<f32>], rate: u32, ceiling: f64, what: &str) {
        let (_, tp) = loudness_and_true_peak(out, rate);
        println!("limiter {what}: ceiling {ceiling} dBTP, output true peak {tp:.4} dBTP");
        assert!(
            tp <= ceiling,
            "{what}: true peak {tp:.3} dBTP > ceiling {ceiling}"
        );
    }

    #[test]
    fn impulse_comes_out_exactly_latency_later() {
        for rate in [8_000, 44_100, 96_000, 192_000] {
            let mut lim =
                TruePeakLimiter::new(rate, 1, &LimiterSettings::with_ceiling(-1.0)).unwrap();
            let lat = lim.latency();
            let mut x = vec![vec![0.0f32; 4000]];
            x[0][100] = 0.25;
            let y = run_stage(&mut lim, &x, 333, false);
            let pos = y[0].iter().position(|&v| v != 0.0).unwrap();
            assert_eq!(pos, 100 + lat, "rate {rate}");
            assert_eq!(
                y[0][pos], 0.25,
                "below the ceiling the limiter is transparent"
            );
            assert_eq!(y[0].iter().filter(|&&v| v != 0.0).count(), 1);
        }
    }

    #[test]
    fn latency_is_the_lookahead() {
        let lim = TruePeakLimiter::new(48_000, 2, &LimiterSettings::with_ceiling(-1.0)).unwrap();
        assert_eq!(lim.latency(), 144); // 3 ms at 48 kHz
    }

    #[test]
    fn hard_cases_stay_under_the_ceiling() {
        let rate = 44_100;
        let len = 3 * rate as usize;
        let mut rng = TestRng::new(7);
        let noise: Vec<f32> = (0..len).map(|_| rng.bipolar() as f32).collect();
        let over_sine = sine(997.0, 2.0, rate, len); // +6 dBFS
        // fs/4 at 45°, amplitude 2: +3 dB intersample peaks over +6 dBFS samples.
        let hf_sine: Vec<f32> = (0..len)
            .map(|n| (2.0 * (PI / 2.0 * n as f64 + PI / 4.0).sin()) as f32)
            .collect();
        let square: Vec<f32> = (0..len)
            .map(|n| if (n / 37) % 2 == 0 { 1.5 } else { -1.5 })
            .collect();
        let mut impulses = vec![0.0f32; len];
        for (k, v) in impulses.iter_mut().enumerate().step_by(4410) {
            *v = if k % 2 == 0 { 4.0 } else { -4.0 };
        }
        let cases = [
            ("white noise", noise),
            ("+6 dBFS sine", over_sine),
            ("fs/4 45° sine", hf_sine),
            ("square", square),
            ("impulses", impulses),
        ];
        for (name, signal) in cases {
            for ceiling in [-1.0, -0.1, -6.0] {
                let stereo = vec![signal.clone(), signal.iter().map(|v| -0.7 * v).collect()];
                let out = limit(&stereo, rate, ceiling, 1000);
                assert_under(&out, rate, ceiling, name);
            }
        }
    }

    #[test]
    fn guarantee_holds_at_every_supported_rate_and_block_size() {
        for rate in [8_000, 22_050, 48_000, 96_000, 192_000] {
            let x = music_like(3, rate, rate as usize * 2, 2, 3.0);
            for block in [1, 64, 4096] {
                let out = limit(&x, rate, -1.0, block);
                assert_under(&out, rate, -1.0, &format!("music {rate} Hz block {block}"));
            }
        }
    }

    #[test]
    fn output_does_not_depend_on_block_size() {
        let x = music_like(11, 44_100, 30_000, 2, 2.0);
        let a = limit(&x, 44_100, -1.0, 1);
        let b = limit(&x, 44_100, -1.0, 255);
        let c = limit(&x, 44_100, -1.0, 10_000);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn sustained_low_tone_is_not_distorted() {
        let rate = 44_100;
        for hz in [50.0, 1000.0] {
            // 6 dB over the ceiling, held for 4 s: the hold keeps the gain constant.
            let x = vec![sine(hz, db_to_lin(5.0), rate, 4 * rate as usize); 2];
            let mut lim =
                TruePeakLimiter::new(rate, 2, &LimiterSettings::with_ceiling(-1.0)).unwrap();
            let y = run_stage(&mut lim, &x, 4096, false);
            let thd = thd_n_percent(&y[0][rate as usize..], hz, rate);
            assert!(
                thd < 0.1,
                "{hz} Hz under 6 dB of limiting: THD+N {thd:.4} %"
            );
            assert!((lim.max_gain_reduction_db() - 6.05).abs() < 0.1);
        }
    }

    #[test]
    fn reset_restores_initial_state() {
        let x = music_like(5, 48_000, 20_000, 2, 4.0);
        let mut lim =
            TruePeakLimiter::new(48_000, 2, &LimiterSettings::with_ceiling(-1.0)).unwrap();
        let first = run_stage(&mut lim, &x, 512, true);
        lim.reset();
        assert_eq!(lim.max_gain_reduction_db(), 0.0);
        let second = run_stage(&mut lim, &x, 512, true);
        assert_eq!(first, second);
    }

    #[test]
    fn rejects_bad_settings() {
        let ok = LimiterSettings::with_ceiling(-1.0);
        assert!(TruePeakLimiter::new(44_100, 2, &ok).is_ok());
        for bad in [
            LimiterSettings::with_ceiling(0.5),
            LimiterSettings::with_ceiling(f64::NAN),
            LimiterSettings {
                lookahead_ms: 0.0,
                ..ok
            },
            LimiterSettings {
                release_ms: 1.0,
                ..ok
            },
        ] {
            assert!(TruePeakLimiter::new(44_100, 2, &bad).is_err(), "{bad:?}");
        }
        assert!(TruePeakLimiter::new(4_000, 2, &ok).is_err());
    }
}
