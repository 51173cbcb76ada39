//! Signal generators, file writers and the reference true-peak meter shared by the tests
//! (test builds, and the `testutil` feature for examples and benches).
#![allow(dead_code)] // each test module uses a different subset

#[cfg(feature = "testutil")]
pub mod kernels;
pub mod reference_peak;

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

/// A sine of `freq` Hz with peak amplitude `amp` (linear), `frames` long.
pub fn sine(freq: f64, amp: f64, rate: u32, frames: usize) -> Vec<f32> {
    (0..frames)
        .map(|n| (amp * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Linear amplitude of a level in dBFS.
pub fn db_to_amp(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// A small deterministic PRNG (xorshift64*) for test noise.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// White noise with uniform distribution and peak `amp`.
pub fn white_noise(amp: f64, frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..frames).map(|_| (amp * rng.uniform()) as f32).collect()
}

/// Pink-ish noise (Paul Kellett's economy filter on white noise), scaled to peak about `amp`.
pub fn pink_noise(amp: f64, frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
    let mut out: Vec<f64> = (0..frames)
        .map(|_| {
            let w = rng.uniform();
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect();
    let peak = out.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-12);
    for x in &mut out {
        *x *= amp / peak;
    }
    out.into_iter().map(|x| x as f32).collect()
}

/// Sample format of a generated WAV.
#[derive(Debug, Clone, Copy)]
pub enum WavKind {
    Int(u16),
    Float,
}

/// Writes planar `f32` channels to a WAV of the given kind (ints are rounded, clamped).
pub fn write_wav(path: &Path, planes: &[Vec<f32>], rate: u32, kind: WavKind) {
    let (bits, fmt) = match kind {
        WavKind::Int(b) => (b, hound::SampleFormat::Int),
        WavKind::Float => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels: planes.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: fmt,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let frames = planes[0].len();
    for n in 0..frames {
        for p in planes {
            match kind {
                WavKind::Float => w.write_sample(p[n]).expect("write"),
                WavKind::Int(b) => {
                    let max = ((1i64 << (b - 1)) - 1) as f64;
                    let v = (f64::from(p[n]) * max).round().clamp(-max - 1.0, max) as i32;
                    if b == 8 {
                        w.write_sample(v as i8).expect("write")
                    } else {
                        w.write_sample(v).expect("write")
                    }
                }
            }
        }
    }
    w.finalize().expect("finalize wav");
}

/// A fresh temporary directory that lives as long as the returned guard.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Writes `planes` as the WAV `dir/name` and returns its path.
pub fn wav_in(
    dir: &tempfile::TempDir,
    name: &str,
    planes: &[Vec<f32>],
    rate: u32,
    kind: WavKind,
) -> PathBuf {
    let path = path_in(dir, name);
    write_wav(&path, planes, rate, kind);
    path
}

/// `dir/name`.
pub fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Decodes a whole file into planar channels (tests only: holds the track in memory).
pub fn decode_all(path: &Path) -> (Vec<Vec<f32>>, u32) {
    let mut dec = crate::decode::Decoder::open(path).expect("open");
    let mut out = vec![Vec::new(); dec.channels()];
    let mut block = Vec::new();
    while dec.read_block(&mut block).expect("decode") > 0 {
        for (o, b) in out.iter_mut().zip(&block) {
            o.extend_from_slice(b);
        }
    }
    (out, dec.sample_rate())
}

/// Writes a 16-bit AIFF (big-endian PCM; sample rate as an 80-bit extended float).
pub fn write_aiff16(path: &Path, planes: &[Vec<f32>], rate: u32) {
    let channels = planes.len() as u16;
    let frames = planes[0].len() as u32;
    let data_len = frames * u32::from(channels) * 2;
    let mut b = Vec::new();
    b.extend_from_slice(b"FORM");
    b.extend_from_slice(&(4 + 8 + 18 + 8 + 8 + data_len).to_be_bytes());
    b.extend_from_slice(b"AIFFCOMM");
    b.extend_from_slice(&18u32.to_be_bytes());
    b.extend_from_slice(&channels.to_be_bytes());
    b.extend_from_slice(&frames.to_be_bytes());
    b.extend_from_slice(&16u16.to_be_bytes());
    // 80-bit extended: exponent 16383 + e, explicit integer bit in the 64-bit mantissa.
    let e = 31 - rate.leading_zeros();
    b.extend_from_slice(&((16383 + e) as u16).to_be_bytes());
    b.extend_from_slice(&((u64::from(rate)) << (63 - e)).to_be_bytes());
    b.extend_from_slice(b"SSND");
    b.extend_from_slice(&(8 + data_len).to_be_bytes());
    b.extend_from_slice(&[0u8; 8]);
    for n in 0..frames as usize {
        for p in planes {
            let v = (f64::from(p[n]) * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
    std::fs::write(path, b).expect("write aiff");
}

/// Seed of the property tests' random inputs unless `PROPTEST_RNG_SEED` names another.
pub const PROPTEST_SEED: u64 = 0x4d61_6769_634d_7374;

/// A property test's configuration: `cases` inputs drawn from a fixed seed, so every run
/// (CI's too) tests the same inputs and a failure reproduces anywhere. Other inputs:
/// `PROPTEST_RNG_SEED=N cargo test --release -p mastering`.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let default = Config::default();
    let rng_seed = match std::env::var_os("PROPTEST_RNG_SEED") {
        Some(_) => default.rng_seed,
        None => RngSeed::Fixed(PROPTEST_SEED),
    };
    Config {
        cases,
        rng_seed,
        ..default
    }
}
