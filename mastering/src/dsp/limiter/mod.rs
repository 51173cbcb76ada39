//! Look-ahead true-peak limiter with oversampled peak detection.
//!
//! # How it works
//!
//! 1. **Detection.** Each input frame's true peak is read by the exact detector the meter
//!    also uses ([`crate::meter::true_peak::ExactPeak`]): a 4× grid from two half-band
//!    stages (a 96-tap and a 10-tap Kaiser-windowed sinc), flat to 0.95 of Nyquist at any
//!    rate, refined by a parabola through each grid maximum; within ±0.05 dB of the reference meter on near-Nyquist
//!    sines, sweeps, squares and hard-clipped mixes. The per-frame peak is the largest over
//!    all channels. Tiles of 8 frames that provably cannot reach the threshold (samples
//!    plus a bound from their second differences) skip the interpolation. Each frame's
//!    peak is never less than ebur128's own 4× reading of it (`ebur128_style`): that
//!    interpolator, the one ffmpeg's `ebur128` meter uses, can read *above* the exact peak
//!    (below), and the users check us with it. A caller that already knows the peaks
//!    (the chain's loudness model stores them per tile when it writes the track) passes
//!    them to [`TruePeakLimiter::process_with_peaks`] instead: no detection at all, the
//!    guarantee intact as long as no given peak is below the detector's reading.
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
//! The hold window covers the whole look-ahead plus the detector's support (112 frames), so
//! every output sample that contributes to a peak is multiplied by a gain no larger than
//! that peak's required gain: the output's true peak, read by the exact detector (and the
//! reference meter), stays at or below the ceiling. Gain varying *within* the support can
//! move an interpolated value by a hair, and the detector can read up to 0.08 dB low on
//! content up to 0.95 of Nyquist (its parabolic refinement up to 0.06 dB on a crest midway
//! between grid points, its filter up to 0.02 dB), so the limiter aims [`SAFETY_MARGIN_DB`]
//! (0.08 dB) below the requested ceiling: on the adversarial cases of
//! `tests::inter_sample_overs_stay_under_the_ceiling_by_the_reference` (near-Nyquist sines,
//! sweeps and bursts, squares, hard-clipped mixes) the output's largest overshoot over
//! that threshold by the reference meter is +0.022 dB (a hard-clipped mix, energy up to
//! Nyquist), +0.008 dB on isolated near-Nyquist bursts, +0.002 dB on sines: the margin is
//! the analytic worst case; the measurements stay well inside it. Meters built on
//! libebur128's interpolator (ffmpeg's `ebur128`) read a sine up to 0.11 dB above its exact
//! peak near 2/3 of Nyquist, and mixes more (0.14 dB measured in
//! `chain::tests::limiter_in_a_pipeline_holds_the_ceiling`, 0.2 dB on a music-like signal
//! in `dsp::quality_tests::limiter_true_peak_never_exceeds_the_ceiling`): the detector
//! takes the larger of both readings, so the limiter holds both; the chain's final
//! verification reads both too and corrects what encoding adds.
//! Inputs must be finite (the DC stage removes NaN and infinities).
//!
//! `process` never allocates; all buffers are sized in `new`.

mod detector;
pub(crate) mod ebur128_style;
mod gain;

use super::{DspError, check_format, check_range, db_to_lin};
use crate::stage::BlockProcessor;
pub(crate) use detector::PeakDetector;
pub(crate) use gain::GainComputer;

/// The limiter aims this far below the requested ceiling, dB: the detector's worst
/// under-read up to 0.95 of Nyquist (parabolic refinement of the 4× grid ≤ 0.06 dB, filter
/// flatness ≤ 0.02 dB) plus the overshoot that gain changes inside the detector's support
/// cause (≤ 0.022 dB measured in all, see the module documentation) and `f32` rounding.
pub const SAFETY_MARGIN_DB: f64 = 0.08;

/// Frames processed per internal chunk (sizes the scratch buffers).
pub(crate) const CHUNK: usize = 256;

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

/// Look-ahead true-peak limiter; see the module documentation.
#[derive(Debug, Clone)]
pub struct TruePeakLimiter {
    channels: usize,
    ceiling_dbtp: f64,
    detector: PeakDetector,
    gains: GainComputer,
    /// Per channel: the last `delay` input samples followed by the current chunk.
    delay_line: Vec<Vec<f32>>,
    delay: usize,
    peak: Vec<f32>,
    gain: Vec<f32>,
}

impl TruePeakLimiter {
    /// Builds a limiter for `channels` channels at `sample_rate` Hz.
    pub fn new(
        sample_rate: u32,
        channels: usize,
        settings: &LimiterSettings,
    ) -> Result<Self, DspError> {
        let (detector, gains, delay) = Self::parts(sample_rate, channels, settings)?;
        Ok(TruePeakLimiter {
            channels,
            ceiling_dbtp: settings.ceiling_dbtp,
            detector,
            gains,
            delay_line: vec![vec![0.0; delay + CHUNK]; channels],
            delay,
            peak: vec![0.0; CHUNK],
            gain: vec![1.0; CHUNK],
        })
    }

    /// The limiter's parts for `settings`: its peak detector, its gain computer and its
    /// delay (frames). The loudness model (`chain::loudness_model`) builds its gain
    /// computers here, so it runs exactly the limiter's timing.
    pub(crate) fn parts(
        sample_rate: u32,
        channels: usize,
        settings: &LimiterSettings,
    ) -> Result<(PeakDetector, GainComputer, usize), DspError> {
        check_format(sample_rate, channels)?;
        let ceiling = check_range("limiter ceiling_dbtp", settings.ceiling_dbtp, -20.0, 0.0)?;
        let lookahead = check_range("limiter lookahead_ms", settings.lookahead_ms, 1.0, 10.0)?;
        let hold_ms = check_range("limiter hold_ms", settings.hold_ms, 0.0, 200.0)?;
        let release_ms = check_range("limiter release_ms", settings.release_ms, 10.0, 2000.0)?;
        let rate = f64::from(sample_rate);

        let detector = PeakDetector::new(sample_rate, channels)?;
        let support = detector.support();
        // Delay = smoothing span (two boxes) + interpolator support; see the module docs.
        let delay = ((lookahead * rate / 1000.0).round() as usize).max(support + 4);
        let smoothing = delay - support; // = w1 + w2 - 2
        let w1 = (smoothing + 2).div_ceil(2);
        let w2 = smoothing + 2 - w1;
        let hold_len = ((hold_ms * rate / 1000.0).round() as usize).max(delay + 1);
        let threshold = db_to_lin(ceiling - SAFETY_MARGIN_DB) as f32;
        let release_coef = (-1.0 / (release_ms * rate / 1000.0)).exp();
        let gains = GainComputer::new(threshold, hold_len, release_coef, (w1, w2));
        Ok((detector, gains, delay))
    }

    /// The requested true-peak ceiling, dBTP.
    pub fn ceiling_dbtp(&self) -> f64 {
        self.ceiling_dbtp
    }

    /// The deepest gain reduction applied since construction or [`reset`](Self::reset), dB
    /// (0 or positive).
    pub fn max_gain_reduction_db(&self) -> f64 {
        -20.0 * f64::from(self.gains.min_gain()).log10()
    }

    /// Detects, computes gains and applies them for one chunk of `n ≤ CHUNK` frames
    /// starting at `offset` in `block`.
    fn process_chunk(&mut self, block: &mut [Vec<f32>], offset: usize, n: usize) {
        let threshold = self.gains.threshold();
        self.detector
            .detect(block, offset, n, &mut self.peak, threshold);
        self.apply_chunk(block, offset, n);
    }

    /// [`BlockProcessor::process`] with the per-frame peaks given instead of detected:
    /// `peaks[i]` stands for what the detector would report for `block`'s frame `i` (the
    /// same positions, see `PeakDetector::detect`). The guarantee holds wherever no peak
    /// is lower than the detector's reading. The chain passes the loudness model's stored
    /// tile peaks times the gain (`chain::loudness_model`), so the track is detected once.
    /// Shorter `peaks` than the block process only as many frames.
    pub fn process_with_peaks(&mut self, block: &mut [Vec<f32>], peaks: &[f32]) {
        let len = block
            .iter()
            .map(Vec::len)
            .min()
            .unwrap_or(0)
            .min(peaks.len());
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(CHUNK);
            self.peak[..n].copy_from_slice(&peaks[offset..offset + n]);
            self.apply_chunk(block, offset, n);
            offset += n;
        }
    }

    /// Computes gains from `self.peak[..n]` and applies them to the delayed audio of the
    /// chunk of `n` frames at `offset`.
    fn apply_chunk(&mut self, block: &mut [Vec<f32>], offset: usize, n: usize) {
        let threshold = self.gains.threshold();
        let chunk_over = self.peak[..n].iter().any(|&p| p > threshold);
        let idle = !chunk_over && self.gains.is_idle();
        if idle {
            // Nothing to limit and no gain reduction in flight: unity gain.
            self.gain[..n].fill(1.0);
            self.gains.skip(n);
        } else {
            self.gains.compute(&self.peak[..n], &mut self.gain[..n]);
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
        self.detector.reset();
        for d in &mut self.delay_line {
            d.fill(0.0);
        }
        self.gains.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::{
        TestRng, loudness_and_true_peak, music_like, run_stage, sine, thd_n_percent,
    };
    use std::f64::consts::PI;

    fn limit(input: &[Vec<f32>], rate: u32, ceiling: f64, block: usize) -> Vec<Vec<f32>> {
        let mut lim =
            TruePeakLimiter::new(rate, input.len(), &LimiterSettings::with_ceiling(ceiling))
                .unwrap();
        run_stage(&mut lim, input, block, true)
    }

    /// The limiter's guarantee is on the exact true peak: judged by the reference meter.
    /// (The `ebur128` crate's 4× reading, printed, can read above the exact peak where
    /// its passband ripple is positive (a sine by 0.11 dB near 2/3 of Nyquist): the
    /// chain's final verification catches that.)
    fn assert_under(out: &[Vec<f32>], rate: u32, ceiling: f64, what: &str) {
        let tp = crate::testutil::reference_peak::reference_true_peak(out).dbtp();
        let (_, ebur128) = loudness_and_true_peak(out, rate);
        println!(
            "limiter {what}: ceiling {ceiling} dBTP, output true peak {tp:.4} dBTP \
             (ebur128 {ebur128:.4})"
        );
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

    /// Isolated 5 ms Hann-windowed bursts of a sine at `cycles_per_sample`, 6 dB over full
    /// scale, every 150 ms, each with its crest at another sub-sample position (a sixteenth
    /// of a sample apart): the detector's grid meets each crest differently, so a burst
    /// whose crest falls between grid points shows the refinement's worst under-read.
    fn bursts(cycles_per_sample: f64, rate: u32, n: usize) -> Vec<f32> {
        let len = (0.005 * f64::from(rate)) as usize;
        let every = (0.15 * f64::from(rate)) as usize;
        let mut x = vec![0.0f32; n];
        for (b, start) in (every / 2..n.saturating_sub(len))
            .step_by(every)
            .enumerate()
        {
            let centre = start as f64 + len as f64 / 2.0 + b as f64 / 16.0;
            for (i, v) in x[start..start + len].iter_mut().enumerate() {
                let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / len as f64).cos();
                let t = (start + i) as f64 - centre;
                *v = (2.0 * w * (2.0 * PI * cycles_per_sample * t).cos()) as f32;
            }
        }
        x
    }

    /// Inter-sample peaks the ebur128-style 4× interpolator misses (near-Nyquist sines
    /// and sweeps, squares, hard-clipped dense mixes), 6–9 dB over the ceiling, at 44.1 and
    /// 48 kHz: the output stays under the ceiling by the reference meter (8× polyphase,
    /// 128 taps per phase, parabolic refinement).
    #[test]
    fn inter_sample_overs_stay_under_the_ceiling_by_the_reference() {
        use crate::meter::true_peak::adversarial::{clipped_mix, faded_sine, square, sweep};
        use crate::testutil::reference_peak::reference_true_peak;
        let mut worst = f64::NEG_INFINITY;
        for rate in [44_100u32, 48_000] {
            let n = rate as usize;
            let cases: Vec<(&str, Vec<f32>)> = vec![
                ("sine 0.9 Nyquist", faded_sine(0.45, 2.0, 0.4, rate, n)),
                ("sine 0.95 Nyquist", faded_sine(0.475, 2.0, 1.3, rate, n)),
                ("sweep to 0.95 Nyquist", sweep(0.2, 0.475, 2.5, rate, n)),
                ("square 5.13", square(5.13, 2.0, n)),
                (
                    "clipped mix",
                    clipped_mix(3, 9.0, n).iter().map(|v| v * 2.0).collect(),
                ),
                ("bursts 0.9 Nyquist", bursts(0.45, rate, n)),
                ("bursts 0.93 Nyquist", bursts(0.465, rate, n)),
            ];
            for (name, x) in cases {
                for ceiling in [-1.0, -0.1] {
                    let stereo = vec![x.clone(), x.iter().map(|v| -0.8 * v).collect()];
                    let out = limit(&stereo, rate, ceiling, 1000);
                    let tp = reference_true_peak(&out).dbtp();
                    println!("limiter {rate} Hz {name}: ceiling {ceiling}, reference {tp:.4} dBTP");
                    // Overshoot over the limiter's own threshold (the ceiling less the
                    // safety margin): what the margin must cover.
                    worst = worst.max(tp - (ceiling - SAFETY_MARGIN_DB));
                    assert!(tp <= ceiling, "{rate} Hz {name}: {tp:.4} dBTP > {ceiling}");
                }
            }
        }
        println!("limiter: largest overshoot over the threshold {worst:+.4} dB (reference)");
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
