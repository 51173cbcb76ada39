//! Gentle single-band compressor with a loudness-relative threshold.
//!
//! - **Detector:** K-weighted (the ITU-R BS.1770 pre-filter) mean square, summed over all
//!   channels (stereo-linked: one gain for every channel, so the image never shifts), then
//!   averaged over an RMS window (one-pole, `rms_ms`). Its level reads like momentary
//!   loudness in LUFS, which is what makes the threshold meaningful: it is given
//!   **relative to the input's measured integrated loudness** (`threshold_rel_db`), never in
//!   absolute dBFS, so a quiet and a loud mix of the same music are treated alike. Every
//!   channel weighs 1 (LFE included).
//! - **Gain computer:** soft knee of `knee_db`, ratio `ratio`, gain reduction only (no
//!   make-up gain: the chain's gain stage sets the loudness afterwards). The stage can only
//!   lower the level, so it never clips.
//! - **Smoothing:** the gain reduction (in dB) follows attack/release one-poles. Detector and
//!   gain are updated every [`CONTROL_INTERVAL`] frames and the linear gain is interpolated
//!   sample by sample in between. The RMS window plus the attack time keep the gain from
//!   following a low-frequency waveform: a 50 Hz sine comes out with THD+N well under 0.1 %.
//!
//! Zero latency; `process` does not allocate.

use super::{DspError, check_format, check_range};
use crate::stage::BlockProcessor;

/// Frames between two updates of the detector and the gain.
pub const CONTROL_INTERVAL: usize = 16;

/// Compressor settings; thresholds are relative to the measured integrated loudness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressorSettings {
    /// Threshold above the input's integrated loudness, dB (LU), -20..=20.
    pub threshold_rel_db: f64,
    /// Compression ratio above the threshold, 1..=10 (1 = no compression).
    pub ratio: f64,
    /// Width of the soft knee, dB, 0..=24.
    pub knee_db: f64,
    /// Attack time constant, ms, 1..=500.
    pub attack_ms: f64,
    /// Release time constant, ms, 10..=5000.
    pub release_ms: f64,
    /// RMS averaging time constant of the detector, ms, 5..=1000.
    pub rms_ms: f64,
}

/// A biquad in direct form I with `f64` state (sidechain only).
#[derive(Debug, Clone, Copy, Default)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    #[inline]
    fn run(&mut self, x: f64) -> f64 {
        // The a1·y[n−1] term last: the loop-carried dependency is one multiply and one
        // subtraction (everything before it is known a sample ahead).
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[1] * self.y[1]
            - self.a[0] * self.y[0];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }

    fn clear(&mut self) {
        self.x = [0.0; 2];
        self.y = [0.0; 2];
    }
}

/// The BS.1770 K-weighting pre-filter (high shelf, then RLB high-pass) for `rate`, with the
/// meter's coefficients, so the detector reads like loudness in LUFS.
fn k_weighting(rate: f64) -> [Biquad; 2] {
    crate::meter::fast::k_weighting_coefficients(rate).map(|(b, a)| Biquad {
        b,
        a,
        ..Biquad::default()
    })
}

/// Stereo-linked RMS compressor; see the module documentation.
#[derive(Debug, Clone)]
pub struct Compressor {
    channels: usize,
    threshold_db: f64,
    slope: f64,
    knee_db: f64,
    filters: Vec<[Biquad; 2]>,
    rms_coef: f64,
    attack_coef: f64,
    release_coef: f64,
    /// Smoothed K-weighted mean square (summed over channels).
    mean_square: f64,
    /// Smoothed gain reduction, dB (≤ 0).
    reduction_db: f64,
    /// Linear gain reached at the end of the last control interval.
    gain: f32,
    /// Frames accumulated in the current control interval and, per channel, their
    /// K-weighted energy.
    pending: usize,
    energy: Vec<f64>,
    /// Per-frame gains of the current control interval (pre-computed at its start).
    ramp: [f32; CONTROL_INTERVAL],
    deepest_db: f64,
    /// Detector mean squares below this are under the knee (static gain 0 dB): the energy
    /// of `threshold_db − knee_db / 2`, less a relative 1e-9 (far more than the rounding of
    /// the dB conversion, far less than any audible level).
    quiet_energy: f64,
}

/// Loudest input the compressor (and so the chain) takes, LUFS. Float files carry samples
/// far above full scale (a +12 dBFS mix reads about +10 LUFS, one gained up by 40 dB +28):
/// they are overs to bring down, not damage. Its threshold is relative to the measured
/// loudness, so the level itself does not matter; 200 LU above full scale is beyond any
/// mix (such values are garbage, refused by [`crate::run::check_masterable`]).
pub const MAX_INPUT_LUFS: f64 = 200.0;

impl Compressor {
    /// Builds a compressor for `channels` channels at `sample_rate` Hz, for an input whose
    /// integrated loudness is `integrated_lufs` (-70..=[`MAX_INPUT_LUFS`] LUFS: float input
    /// may lie far above full scale).
    pub fn new(
        sample_rate: u32,
        channels: usize,
        integrated_lufs: f64,
        settings: &CompressorSettings,
    ) -> Result<Self, DspError> {
        check_format(sample_rate, channels)?;
        let lufs = check_range(
            "integrated loudness (LUFS)",
            integrated_lufs,
            -70.0,
            MAX_INPUT_LUFS,
        )?;
        let rel = check_range(
            "compressor threshold",
            settings.threshold_rel_db,
            -20.0,
            20.0,
        )?;
        let ratio = check_range("compressor ratio", settings.ratio, 1.0, 10.0)?;
        let knee = check_range("compressor knee", settings.knee_db, 0.0, 24.0)?;
        let attack = check_range("compressor attack_ms", settings.attack_ms, 1.0, 500.0)?;
        let release = check_range("compressor release_ms", settings.release_ms, 10.0, 5000.0)?;
        let rms = check_range("compressor rms_ms", settings.rms_ms, 5.0, 1000.0)?;
        let rate = f64::from(sample_rate);
        let control_rate = rate / CONTROL_INTERVAL as f64;
        let coef = |ms: f64| (-1.0 / (ms / 1000.0 * control_rate)).exp();
        Ok(Compressor {
            channels,
            threshold_db: lufs + rel,
            slope: 1.0 / ratio - 1.0,
            knee_db: knee,
            filters: vec![k_weighting(rate); channels],
            rms_coef: coef(rms),
            attack_coef: coef(attack),
            release_coef: coef(release),
            mean_square: 0.0,
            reduction_db: 0.0,
            gain: 1.0,
            pending: 0,
            energy: vec![0.0; channels],
            ramp: [1.0; CONTROL_INTERVAL],
            deepest_db: 0.0,
            quiet_energy: 10f64.powf((lufs + rel - knee / 2.0 + 0.691) / 10.0) * (1.0 - 1e-9),
        })
    }

    /// The deepest gain reduction applied so far, dB (0 or positive).
    pub fn max_gain_reduction_db(&self) -> f64 {
        -self.deepest_db
    }

    /// Static curve: gain change (dB, ≤ 0) for a detector level `level_db`.
    fn static_gain_db(&self, level_db: f64) -> f64 {
        let over = level_db - self.threshold_db;
        let half_knee = self.knee_db / 2.0;
        if over <= -half_knee {
            0.0
        } else if over < half_knee {
            self.slope * (over + half_knee).powi(2) / (2.0 * self.knee_db)
        } else {
            self.slope * over
        }
    }

    /// Ends a control interval: updates the detector and prepares the next gain ramp.
    fn update_gain(&mut self) {
        let block_ms = self.energy.iter().sum::<f64>() / CONTROL_INTERVAL as f64;
        self.mean_square = block_ms + (self.mean_square - block_ms) * self.rms_coef;
        // Below the knee the static curve is 0 dB: no logarithm needed (the margin in
        // `quiet_energy` keeps the test on the safe side of rounding).
        let wanted = if self.mean_square < self.quiet_energy {
            0.0
        } else {
            let level_db = -0.691 + 10.0 * self.mean_square.max(1e-20).log10();
            self.static_gain_db(level_db)
        };
        let coef = if wanted < self.reduction_db {
            self.attack_coef
        } else {
            self.release_coef
        };
        self.reduction_db = wanted + (self.reduction_db - wanted) * coef;
        self.deepest_db = self.deepest_db.min(self.reduction_db);
        // 10^(dB/20) as e^(dB·ln10/20): `exp` costs about half of `powf`, which was paid
        // every control interval; the two differ in the last bits of the f64, far below
        // the f32 gain's resolution. No reduction is a gain of exactly 1.
        let target = if self.reduction_db == 0.0 {
            1.0
        } else {
            (self.reduction_db * (std::f64::consts::LN_10 / 20.0)).exp() as f32
        };
        let step = (target - self.gain) / CONTROL_INTERVAL as f32;
        for (i, g) in self.ramp.iter_mut().enumerate() {
            *g = self.gain + step * (i + 1) as f32;
        }
        self.gain = target;
        self.energy.fill(0.0);
        self.pending = 0;
    }
}

impl Compressor {
    /// [`BlockProcessor::process`] for stereo: both channels in one loop, so the four
    /// filter recursions overlap, with the filter state in locals for the whole block
    /// instead of copied in and out for every 16-frame control interval (321.8 s stereo,
    /// one core: 0.13 s → 0.11 s). The same operations in the same order as the
    /// per-interval form: bit-identical.
    fn process_stereo(&mut self, left: &mut [f32], right: &mut [f32]) {
        let len = left.len().min(right.len());
        let ([mut sl, mut hl], [mut sr, mut hr]) = (self.filters[0], self.filters[1]);
        let (mut sum_l, mut sum_r) = (self.energy[0], self.energy[1]);
        let mut offset = 0;
        while offset < len {
            // Frames up to the end of the current control interval.
            let n = (CONTROL_INTERVAL - self.pending).min(len - offset);
            let first = self.pending;
            let ramp = &self.ramp[first..first + n];
            let (l, r) = (
                &mut left[offset..offset + n],
                &mut right[offset..offset + n],
            );
            for ((a, b), &g) in l.iter_mut().zip(r.iter_mut()).zip(ramp) {
                let ka = hl.run(sl.run(f64::from(*a)));
                let kb = hr.run(sr.run(f64::from(*b)));
                sum_l += ka * ka;
                sum_r += kb * kb;
                *a *= g;
                *b *= g;
            }
            self.pending += n;
            offset += n;
            if self.pending == CONTROL_INTERVAL {
                (self.energy[0], self.energy[1]) = (sum_l, sum_r);
                self.update_gain();
                (sum_l, sum_r) = (self.energy[0], self.energy[1]);
            }
        }
        (self.filters[0], self.filters[1]) = ([sl, hl], [sr, hr]);
        (self.energy[0], self.energy[1]) = (sum_l, sum_r);
    }
}

impl BlockProcessor for Compressor {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        let channels = block.len().min(self.channels);
        if let [left, right] = &mut block[..channels] {
            self.process_stereo(left, right);
            return;
        }
        let len = block[..channels].iter().map(Vec::len).min().unwrap_or(0);
        let mut offset = 0;
        while offset < len {
            // Frames up to the end of the current control interval.
            let n = (CONTROL_INTERVAL - self.pending).min(len - offset);
            let first = self.pending;
            let ramp = &self.ramp[first..first + n];
            for ((samples, filters), energy) in block[..channels]
                .iter_mut()
                .zip(&mut self.filters)
                .zip(&mut self.energy)
            {
                let [mut shelf, mut highpass] = *filters;
                let mut sum = *energy;
                for (v, &g) in samples[offset..offset + n].iter_mut().zip(ramp) {
                    let k = highpass.run(shelf.run(f64::from(*v)));
                    sum += k * k;
                    *v *= g;
                }
                *filters = [shelf, highpass];
                *energy = sum;
            }
            self.pending += n;
            offset += n;
            if self.pending == CONTROL_INTERVAL {
                self.update_gain();
            }
        }
    }

    fn latency(&self) -> usize {
        0
    }

    fn reset(&mut self) {
        for f in self.filters.iter_mut().flatten() {
            f.clear();
        }
        self.mean_square = 0.0;
        self.reduction_db = 0.0;
        self.gain = 1.0;
        self.pending = 0;
        self.energy.fill(0.0);
        self.ramp = [1.0; CONTROL_INTERVAL];
        self.deepest_db = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::{
        loudness_and_true_peak, loudness_range, run_stage, sine, thd_n_percent,
    };

    fn settings() -> CompressorSettings {
        CompressorSettings {
            threshold_rel_db: 0.0,
            ratio: 2.0,
            knee_db: 0.0,
            attack_ms: 20.0,
            release_ms: 200.0,
            rms_ms: 30.0,
        }
    }

    fn stereo_tone(hz: f64, dbfs: f64, rate: u32, secs: f64) -> Vec<Vec<f32>> {
        let amp = 10f64.powf(dbfs / 20.0);
        vec![sine(hz, amp, rate, (secs * f64::from(rate)) as usize); 2]
    }

    #[test]
    fn detector_reads_loudness_and_ratio_applies() {
        let rate = 48_000;
        // Tone at -20 dBFS reads -20 LUFS (stereo); threshold at -26 → 6 dB over, ratio 2:
        // 3 dB of reduction once settled.
        let x = stereo_tone(1000.0, -20.0, rate, 3.0);
        let mut comp = Compressor::new(rate, 2, -26.0, &settings()).unwrap();
        let y = run_stage(&mut comp, &x, 1024, false);
        let tail = rate as usize * 2..rate as usize * 3;
        let gain_db = 20.0
            * (crate::dsp::test_signals::rms(&y[0][tail.clone()])
                / crate::dsp::test_signals::rms(&x[0][tail]))
            .log10();
        assert!((gain_db + 3.0).abs() < 0.1, "gain {gain_db:.3} dB");
        assert!((comp.max_gain_reduction_db() - 3.0).abs() < 0.1);
        // Below threshold: untouched.
        let mut quiet = Compressor::new(rate, 2, -10.0, &settings()).unwrap();
        let z = run_stage(&mut quiet, &x, 1024, false);
        assert_eq!(z, x);
    }

    #[test]
    fn thresholds_are_relative_to_measured_loudness() {
        // The same music 12 dB apart, each with its own measured loudness: same gain change.
        let rate = 44_100;
        let loud = crate::dsp::test_signals::music_like(9, rate, rate as usize * 6, 2, 0.9);
        let quiet: Vec<Vec<f32>> = loud
            .iter()
            .map(|c| c.iter().map(|v| v * 0.25).collect())
            .collect();
        let mut changes = vec![];
        for x in [&loud, &quiet] {
            let (lufs, _) = loudness_and_true_peak(x, rate);
            let mut comp = Compressor::new(rate, 2, lufs, &settings()).unwrap();
            let y = run_stage(&mut comp, x, 4096, false);
            changes.push(loudness_and_true_peak(&y, rate).0 - lufs);
        }
        assert!(changes[0] < -0.5, "compressor did nothing: {changes:?}");
        assert!((changes[0] - changes[1]).abs() < 0.05, "{changes:?}");
    }

    #[test]
    fn low_sine_is_not_distorted() {
        let rate = 44_100;
        for hz in [50.0, 1000.0] {
            // 10 dB over the threshold: steady reduction, no waveform following.
            let x = stereo_tone(hz, -6.0, rate, 4.0);
            let (lufs, _) = loudness_and_true_peak(&x, rate);
            let mut comp = Compressor::new(
                rate,
                2,
                lufs,
                &CompressorSettings {
                    threshold_rel_db: -10.0,
                    ratio: 4.0,
                    knee_db: 6.0,
                    ..settings()
                },
            )
            .unwrap();
            let y = run_stage(&mut comp, &x, 4096, false);
            let thd = thd_n_percent(&y[0][rate as usize * 2..], hz, rate);
            println!("compressor {hz} Hz, 7.5 dB reduction: THD+N {thd:.4} %");
            assert!(thd < 0.1, "{hz} Hz: THD+N {thd:.4} %");
        }
    }

    #[test]
    fn never_raises_the_level_and_keeps_most_lra() {
        let rate = 48_000;
        // EBU 3342-1 style: 20 s at -20 dBFS, 20 s at -30 dBFS: LRA 10 LU.
        let mut x = stereo_tone(1000.0, -20.0, rate, 20.0);
        let low = stereo_tone(1000.0, -30.0, rate, 20.0);
        for (c, l) in x.iter_mut().zip(&low) {
            c.extend_from_slice(l);
        }
        let (lufs, _) = loudness_and_true_peak(&x, rate);
        let lra_in = loudness_range(&x, rate);
        let mut comp = Compressor::new(rate, 2, lufs, &settings()).unwrap();
        let y = run_stage(&mut comp, &x, 4096, false);
        for (a, b) in x.iter().flatten().zip(y.iter().flatten()) {
            assert!(b.abs() <= a.abs() + 1e-7);
        }
        let lra_out = loudness_range(&y, rate);
        assert!(
            lra_out >= 0.7 * lra_in && lra_out < lra_in,
            "{lra_in} → {lra_out}"
        );
    }

    /// The detector skips the logarithm for mean squares under `quiet_energy`: there the
    /// static curve must give exactly 0 dB, and just above the knee's start it must not
    /// (so the shortcut is not cutting into the knee), for soft and hard knees.
    #[test]
    fn quiet_shortcut_stays_under_the_knee() {
        for (lufs, knee_db) in [(-14.0, 0.0), (-23.0, 6.0), (-9.0, 12.0), (150.0, 3.0)] {
            let comp = Compressor::new(
                48_000,
                2,
                lufs,
                &CompressorSettings {
                    knee_db,
                    ..settings()
                },
            )
            .unwrap();
            let level = |ms: f64| -0.691 + 10.0 * ms.max(1e-20).log10();
            for factor in [1e-30, 1e-3, 0.5, 0.999_999, 1.0 - 2e-9] {
                let ms = comp.quiet_energy * factor;
                assert_eq!(
                    comp.static_gain_db(level(ms)),
                    0.0,
                    "{lufs} LUFS, knee {knee_db}: {factor}"
                );
            }
            // 0.01 dB past the knee's start (and past the threshold for a hard knee).
            let ms = comp.quiet_energy * 10f64.powf(0.01 / 10.0);
            assert!(
                comp.static_gain_db(level(ms)) < 0.0,
                "{lufs} LUFS, knee {knee_db}: no reduction past the knee's start"
            );
        }
    }

    #[test]
    fn rejects_bad_settings_and_resets() {
        assert!(Compressor::new(44_100, 2, f64::NEG_INFINITY, &settings()).is_err());
        assert!(
            Compressor::new(
                44_100,
                2,
                -14.0,
                &CompressorSettings {
                    ratio: 0.5,
                    ..settings()
                }
            )
            .is_err()
        );
        let x = stereo_tone(440.0, -3.0, 44_100, 0.5);
        let mut comp = Compressor::new(44_100, 2, -20.0, &settings()).unwrap();
        let a = run_stage(&mut comp, &x, 100, false);
        comp.reset();
        let b = run_stage(&mut comp, &x, 3000, false);
        assert_eq!(a, b, "reset and block size must not change the output");
    }
}
