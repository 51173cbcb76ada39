//! Test-only signal generators and measurements shared by the DSP tests.

use crate::stage::BlockProcessor;
use ebur128::{EbuR128, Mode};
use std::f64::consts::PI;

/// A sine of `amp` peak amplitude, `len` samples.
pub fn sine(hz: f64, amp: f64, rate: u32, len: usize) -> Vec<f32> {
    let w = 2.0 * PI * hz / f64::from(rate);
    (0..len)
        .map(|n| (amp * (w * n as f64).sin()) as f32)
        .collect()
}

/// RMS of a slice.
pub fn rms(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Deterministic xorshift64* generator for test signals.
pub struct TestRng(u64);

impl TestRng {
    /// Seeds the generator (0 is mapped to a fixed non-zero seed).
    pub fn new(seed: u64) -> Self {
        TestRng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1).
    pub fn bipolar(&mut self) -> f64 {
        2.0 * self.uniform() - 1.0
    }
}

/// Runs `stage` over `input` in blocks of `block_len` frames (the last may be shorter) and
/// returns the output, `latency()` extra frames of zeros appended to the input so the whole
/// signal comes out.
pub fn run_stage(
    stage: &mut dyn BlockProcessor,
    input: &[Vec<f32>],
    block_len: usize,
    flush: bool,
) -> Vec<Vec<f32>> {
    let extra = if flush { stage.latency() } else { 0 };
    let len = input[0].len() + extra;
    let mut out: Vec<Vec<f32>> = input
        .iter()
        .map(|ch| {
            let mut v = ch.clone();
            v.resize(len, 0.0);
            v
        })
        .collect();
    let mut start = 0;
    let mut block: Vec<Vec<f32>> = vec![Vec::new(); input.len()];
    while start < len {
        let end = (start + block_len).min(len);
        for (b, o) in block.iter_mut().zip(&out) {
            b.clear();
            b.extend_from_slice(&o[start..end]);
        }
        stage.process(&mut block);
        for (b, o) in block.iter().zip(out.iter_mut()) {
            o[start..end].copy_from_slice(b);
        }
        start = end;
    }
    out
}

/// Integrated loudness (LUFS) and the highest per-channel true peak (dBTP) measured by the
/// `ebur128` crate (4× oversampling below 96 kHz).
pub fn loudness_and_true_peak(x: &[Vec<f32>], rate: u32) -> (f64, f64) {
    let mut meter = EbuR128::new(x.len() as u32, rate, Mode::I | Mode::TRUE_PEAK).unwrap();
    let planes: Vec<&[f32]> = x.iter().map(|c| c.as_slice()).collect();
    meter.add_frames_planar_f32(&planes).unwrap();
    let tp = (0..x.len() as u32)
        .map(|c| meter.true_peak(c).unwrap())
        .fold(0.0, f64::max);
    (meter.loudness_global().unwrap(), 20.0 * tp.log10())
}

/// Loudness range (LU) by the `ebur128` crate.
pub fn loudness_range(x: &[Vec<f32>], rate: u32) -> f64 {
    let mut meter = EbuR128::new(x.len() as u32, rate, Mode::LRA).unwrap();
    let planes: Vec<&[f32]> = x.iter().map(|c| c.as_slice()).collect();
    meter.add_frames_planar_f32(&planes).unwrap();
    meter.loudness_range().unwrap()
}

/// Pearson correlation of two channels.
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-30)
}

/// THD+N of a sine of known frequency, in percent of the fundamental: fits
/// `a·sin + b·cos + c` by least squares at exactly `hz` and reports the RMS of the residual
/// (harmonics, noise, anything not the fundamental) over the RMS of the fitted fundamental.
pub fn thd_n_percent(x: &[f32], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * hz / f64::from(rate);
    // Normal equations for the basis [sin, cos, 1].
    let mut m = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for (n, &s) in x.iter().enumerate() {
        let phi = w * n as f64;
        let basis = [phi.sin(), phi.cos(), 1.0];
        for i in 0..3 {
            v[i] += basis[i] * f64::from(s);
            for j in 0..3 {
                m[i][j] += basis[i] * basis[j];
            }
        }
    }
    let coef = solve3(m, v);
    let mut residual = 0.0;
    for (n, &s) in x.iter().enumerate() {
        let phi = w * n as f64;
        let fit = coef[0] * phi.sin() + coef[1] * phi.cos() + coef[2];
        residual += (f64::from(s) - fit).powi(2);
    }
    let residual_rms = (residual / x.len() as f64).sqrt();
    let fundamental_rms = ((coef[0].powi(2) + coef[1].powi(2)) / 2.0).sqrt();
    100.0 * residual_rms / fundamental_rms
}

/// Solves a 3×3 linear system by Gaussian elimination with partial pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap_or(col);
        m.swap(col, pivot);
        v.swap(col, pivot);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (dst, src) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *dst -= f * src;
            }
            v[row] -= f * v[col];
        }
    }
    let mut out = [0.0; 3];
    for row in (0..3).rev() {
        let mut s = v[row];
        for k in row + 1..3 {
            s -= m[row][k] * out[k];
        }
        out[row] = s / m[row][row];
    }
    out
}

/// A music-like test signal: a few sustained partials, low-passed noise, and decaying
/// percussive transients, scaled to peak `peak` (linear), `channels` correlated channels.
pub fn music_like(seed: u64, rate: u32, len: usize, channels: usize, peak: f64) -> Vec<Vec<f32>> {
    let mut rng = TestRng::new(seed);
    let partials: Vec<(f64, f64, f64)> = (0..5)
        .map(|_| {
            let hz = 40.0 * (2f64).powf(rng.uniform() * 8.0);
            (
                hz.min(0.45 * f64::from(rate)),
                rng.uniform(),
                rng.uniform() * std::f64::consts::TAU,
            )
        })
        .collect();
    let hit_every = (rate as f64 * (0.1 + 0.4 * rng.uniform())) as usize;
    let noise_pole = 0.5 + 0.49 * rng.uniform();
    let mut out = vec![vec![0.0f32; len]; channels];
    for (c, ch) in out.iter_mut().enumerate() {
        let mut lp = 0.0;
        let mut env = 0.0;
        let mut click_phase = 0.0f64;
        for (n, s) in ch.iter_mut().enumerate() {
            let t = n as f64 / f64::from(rate);
            let mut v = 0.0;
            for &(hz, amp, ph) in &partials {
                v += amp * (2.0 * PI * hz * t + ph + c as f64 * 0.3).sin();
            }
            lp = noise_pole * lp + (1.0 - noise_pole) * rng.bipolar();
            v += 2.0 * lp;
            if n % hit_every == 0 {
                env = 3.0;
                click_phase = 0.0;
            }
            click_phase += 2.0 * PI * 2500.0 / f64::from(rate);
            v += env * (rng.bipolar() * 0.5 + click_phase.sin());
            env *= 0.9995;
            *s = v as f32;
        }
    }
    let max = out
        .iter()
        .flatten()
        .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()))
        .max(1e-9);
    for v in out.iter_mut().flatten() {
        *v = (f64::from(*v) * peak / max) as f32;
    }
    out
}

#[test]
fn thd_meter_reads_known_distortion() {
    let rate = 48_000;
    let pure = sine(1000.0, 0.5, rate, rate as usize);
    let pure_thd = thd_n_percent(&pure, 1000.0, rate);
    assert!(pure_thd < 1e-3, "pure sine reads {pure_thd} %");
    let third = sine(3000.0, 0.05, rate, rate as usize);
    let distorted: Vec<f32> = pure.iter().zip(&third).map(|(a, b)| a + b).collect();
    let thd = thd_n_percent(&distorted, 1000.0, rate);
    assert!(
        (thd - 10.0).abs() < 0.01,
        "10 % third harmonic reads {thd} %"
    );
    // A 50 Hz fundamental over a non-integer number of periods still reads right.
    let low = sine(50.0, 0.8, 44_100, 100_000);
    let low3 = sine(150.0, 0.008, 44_100, 100_000);
    let low_d: Vec<f32> = low.iter().zip(&low3).map(|(a, b)| a + b).collect();
    let thd_low = thd_n_percent(&low_d, 50.0, 44_100);
    assert!(
        (thd_low - 1.0).abs() < 0.01,
        "1 % at 50 Hz reads {thd_low} %"
    );
}

/// Stereo music-like sections of 10 s each at the given levels (dB re a -3 dBFS peak), one
/// after the other: a programme with quiet and loud passages, for loudness-range tests.
pub fn sectioned_music(rate: u32, levels_db: &[f64]) -> Vec<Vec<f32>> {
    let mut x: Vec<Vec<f32>> = vec![Vec::new(), Vec::new()];
    for (i, level_db) in levels_db.iter().enumerate() {
        let part = music_like(
            30 + i as u64,
            rate,
            rate as usize * 10,
            2,
            super::db_to_lin(level_db - 3.0),
        );
        for (c, p) in x.iter_mut().zip(part) {
            c.extend(p);
        }
    }
    x
}
