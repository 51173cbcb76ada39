//! Whole-file analysis: loudness (via [`crate::meter`]), long-term average spectrum (via
//! [`crate::dsp::spectrum::OctaveAnalyzer`], the same measurement the EQ is designed from),
//! stereo correlation, crest factor, PLR and a streaming-platform preview.

pub use crate::dsp::spectrum::OctaveAnalyzer;

use crate::decode::Decoder;
use crate::error::MasterError;
use crate::meter::{FLOOR_DB, LoudnessMeter, MeterMode, amp_to_db};
use crate::report::{Analysis, StreamingPreview};
use std::path::Path;

/// Running L/R correlation, RMS and peak of a planar signal.
#[derive(Debug, Clone, Default)]
pub struct SignalStats {
    sum_lr: f64,
    sum_ll: f64,
    sum_rr: f64,
    sum_sq: f64,
    samples: u64,
    peak: f32,
    channels: usize,
}

impl SignalStats {
    /// Stats for `channels` channels.
    pub fn new(channels: usize) -> SignalStats {
        SignalStats {
            channels,
            ..Default::default()
        }
    }

    /// Adds one planar block.
    pub fn add_block<S: AsRef<[f32]>>(&mut self, block: &[S]) {
        if let [l, r] = block
            && l.as_ref().len() == r.as_ref().len()
        {
            // Stereo: one pass over both channels gives Σ l², Σ r² (summed exactly as
            // `sum_sq_and_peak` sums them), Σ l·r and the peak; two passes fewer.
            let (l, r) = (l.as_ref(), r.as_ref());
            let ((lr, ll, rr), peak) = cross_sums_and_peak(l, r);
            self.peak = self.peak.max(peak);
            self.sum_sq += ll;
            self.sum_sq += rr;
            self.samples += 2 * l.len() as u64;
            self.sum_lr += lr;
            self.sum_ll += ll;
            self.sum_rr += rr;
            return;
        }
        for plane in block {
            let plane = plane.as_ref();
            let (sq, peak) = sum_sq_and_peak(plane);
            self.peak = self.peak.max(peak);
            self.sum_sq += sq;
            self.samples += plane.len() as u64;
        }
        if block.len() >= 2 {
            let (lr, ll, rr) = cross_sums(block[0].as_ref(), block[1].as_ref());
            self.sum_lr += lr;
            self.sum_ll += ll;
            self.sum_rr += rr;
        }
    }

    /// Pearson correlation of the first two channels, -1 ..= 1; 1.0 for mono, and when
    /// either channel is silent (nothing out of phase to report).
    pub fn correlation(&self) -> f64 {
        if self.channels < 2 {
            return 1.0;
        }
        let denom = (self.sum_ll * self.sum_rr).sqrt();
        if denom > 0.0 {
            (self.sum_lr / denom).clamp(-1.0, 1.0)
        } else {
            1.0
        }
    }

    /// RMS over all samples of all channels, dBFS.
    pub fn rms_db(&self) -> f64 {
        if self.samples == 0 {
            return FLOOR_DB;
        }
        amp_to_db((self.sum_sq / self.samples as f64).sqrt())
    }

    /// Sample peak over all channels, dBFS.
    pub fn peak_db(&self) -> f64 {
        amp_to_db(f64::from(self.peak))
    }

    /// Crest factor, peak over RMS, dB (0 for silence).
    pub fn crest_factor_db(&self) -> f64 {
        if self.sum_sq > 0.0 {
            self.peak_db() - self.rms_db()
        } else {
            0.0
        }
    }
}

/// Running sums kept in this many lanes, so the loops pipeline and vectorise (the same
/// blocks always give the same sums).
const LANES: usize = 4;

/// Σ x² in `f64` and the largest |x| of `x`.
fn sum_sq_and_peak(x: &[f32]) -> (f64, f32) {
    let mut sq = [0.0f64; LANES];
    let mut peak = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for ((s, p), &v) in sq.iter_mut().zip(&mut peak).zip(c) {
            *s += f64::from(v) * f64::from(v);
            *p = p.max(v.abs());
        }
    }
    for (i, &v) in chunks.remainder().iter().enumerate() {
        sq[i] += f64::from(v) * f64::from(v);
        peak[i] = peak[i].max(v.abs());
    }
    (
        (sq[0] + sq[1]) + (sq[2] + sq[3]),
        peak.iter().copied().fold(0.0, f32::max),
    )
}

/// Σ l·r, Σ l², Σ r² in `f64`.
fn cross_sums(l: &[f32], r: &[f32]) -> (f64, f64, f64) {
    let n = l.len().min(r.len());
    cross_sums_and_peak(&l[..n], &r[..n]).0
}

/// Σ l·r, Σ l², Σ r² in `f64` (each in [`LANES`] running sums, sample `i` into sum
/// `i mod LANES`, as [`sum_sq_and_peak`] does, so Σ l² and Σ r² equal its sums bit for bit)
/// and the largest |x| of both, over the first `min(l.len(), r.len())` frames.
fn cross_sums_and_peak(l: &[f32], r: &[f32]) -> ((f64, f64, f64), f32) {
    let (mut lr, mut ll, mut rr) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let mut peak = [0.0f32; LANES];
    let n = l.len().min(r.len());
    let (l, r) = (&l[..n], &r[..n]);
    let mut add = |k: usize, a: f32, b: f32| {
        peak[k] = peak[k].max(a.abs()).max(b.abs());
        let (a, b) = (f64::from(a), f64::from(b));
        lr[k] += a * b;
        ll[k] += a * a;
        rr[k] += b * b;
    };
    let (lc, rc) = (l.chunks_exact(LANES), r.chunks_exact(LANES));
    let (lt, rt) = (lc.remainder(), rc.remainder());
    for (a, b) in lc.zip(rc) {
        for k in 0..LANES {
            add(k, a[k], b[k]);
        }
    }
    for (k, (&a, &b)) in lt.iter().zip(rt).enumerate() {
        add(k, a, b);
    }
    let total = |s: [f64; LANES]| (s[0] + s[1]) + (s[2] + s[3]);
    (
        (total(lr), total(ll), total(rr)),
        peak.iter().copied().fold(0.0, f32::max),
    )
}

/// How a platform's loudness normalisation treats a track quieter than its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// Turns loud tracks down, never turns quiet ones up.
    DownOnly,
    /// Turns quiet tracks up, but only as far as the true peak stays at or below this
    /// ceiling, dBTP.
    UpToPeak(f64),
}

/// A streaming platform's published loudness reference and normalisation behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Platform {
    pub name: &'static str,
    pub target_lufs: f64,
    pub policy: Normalization,
}

/// The platforms of the preview, as documented by them (2024): Spotify (-14, turns quiet
/// tracks up only as far as -1 dBTP in its default mode) and Apple Music (Sound Check,
/// -16, likewise limited by peak headroom, modelled as -1 dBTP); YouTube, Tidal, Amazon
/// Music (-14) and Deezer (-15) only turn loud tracks down. A model of their stated
/// behaviour, not a measurement of their players.
pub const PLATFORMS: [Platform; 6] = [
    Platform {
        name: "Spotify",
        target_lufs: -14.0,
        policy: Normalization::UpToPeak(-1.0),
    },
    Platform {
        name: "Apple Music",
        target_lufs: -16.0,
        policy: Normalization::UpToPeak(-1.0),
    },
    Platform {
        name: "YouTube",
        target_lufs: -14.0,
        policy: Normalization::DownOnly,
    },
    Platform {
        name: "Tidal",
        target_lufs: -14.0,
        policy: Normalization::DownOnly,
    },
    Platform {
        name: "Amazon Music",
        target_lufs: -14.0,
        policy: Normalization::DownOnly,
    },
    Platform {
        name: "Deezer",
        target_lufs: -15.0,
        policy: Normalization::DownOnly,
    },
];

/// The gain, dB, each platform would apply to a track of `lufs` and `true_peak_db`.
pub fn streaming_preview(lufs: f64, true_peak_db: f64) -> Vec<StreamingPreview> {
    PLATFORMS
        .iter()
        .map(|p| {
            let wanted = p.target_lufs - lufs;
            let gain = match p.policy {
                Normalization::DownOnly => wanted.min(0.0),
                Normalization::UpToPeak(ceiling) if wanted > 0.0 => {
                    wanted.min((ceiling - true_peak_db).max(0.0))
                }
                Normalization::UpToPeak(_) => wanted,
            };
            StreamingPreview {
                platform: p.name.to_string(),
                target_lufs: p.target_lufs,
                gain_applied_db: (gain * 100.0).round() / 100.0,
            }
        })
        .collect()
}

/// Decodes `path` once and returns its full [`Analysis`]; with `max_duration_sec`, a file
/// lasting longer is refused ([`Decoder::limit_duration`]).
pub fn analyze_file(path: &Path, max_duration_sec: Option<f64>) -> Result<Analysis, MasterError> {
    let mut decoder = Decoder::open(path)?;
    if let Some(max) = max_duration_sec {
        decoder.limit_duration(max)?;
    }
    let channels = decoder.channels();
    let rate = decoder.sample_rate();
    let mut meter = LoudnessMeter::new(channels, rate, MeterMode::FULL)?;
    let mut spectrum = OctaveAnalyzer::new(rate, channels)?;
    let mut stats = SignalStats::new(channels);
    let mut block = Vec::new();
    while decoder.read_block(&mut block)? > 0 {
        meter.add_block(&block)?;
        spectrum.add(&block);
        stats.add_block(&block);
    }
    spectrum.finish();
    let loudness = meter.loudness();
    Ok(Analysis {
        lufs: loudness.lufs,
        true_peak_db: loudness.true_peak_db,
        sample_peak_db: loudness.sample_peak_db,
        lra: loudness.lra,
        duration_sec: meter.seconds(),
        sample_rate: rate,
        channels: channels as u16,
        plr_db: if loudness.lufs > FLOOR_DB {
            loudness.true_peak_db - loudness.lufs
        } else {
            0.0
        },
        crest_factor_db: stats.crest_factor_db(),
        stereo_correlation: stats.correlation(),
        spectrum: spectrum.report_bands(),
        streaming_preview: streaming_preview(loudness.lufs, loudness.true_peak_db),
    })
}

#[cfg(test)]
mod tests;
