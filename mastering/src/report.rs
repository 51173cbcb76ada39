//! Measurements returned to callers; serialised as the API's JSON fields.

use serde::{Deserialize, Serialize};

/// Format facts of a decodable file, found by [`crate::probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    /// Codec name as symphonia reports it (`pcm_s16le`, `flac`, `mp3`, `vorbis`, …).
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Duration in seconds when the container knows it.
    pub duration_sec: Option<f64>,
    /// Bits per sample of the source when known.
    pub bits_per_sample: Option<u32>,
}

/// BS.1770 measurements of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loudness {
    /// Integrated loudness, LUFS.
    pub lufs: f64,
    /// True peak (4× oversampled), dBTP.
    pub true_peak_db: f64,
    /// Highest sample magnitude, dBFS.
    pub sample_peak_db: f64,
    /// Loudness range, LU.
    pub lra: f64,
}

/// Full analysis of a file, as `POST /api/v2/analyze` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub lufs: f64,
    pub true_peak_db: f64,
    pub sample_peak_db: f64,
    pub lra: f64,
    pub duration_sec: f64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Peak-to-loudness ratio: true peak minus integrated loudness, dB.
    pub plr_db: f64,
    /// Crest factor: sample peak over RMS, dB.
    pub crest_factor_db: f64,
    /// L/R correlation, -1 ..= 1 (1.0 for mono).
    pub stereo_correlation: f64,
    /// Long-term average spectrum in octave bands.
    pub spectrum: Vec<SpectrumBand>,
    /// What streaming services would do to this file.
    pub streaming_preview: Vec<StreamingPreview>,
}

/// One octave band of the long-term average spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpectrumBand {
    /// Centre frequency, Hz.
    pub hz: f64,
    /// Level relative to the 1 kHz band, dB.
    pub db: f64,
}

/// The gain a streaming platform's loudness normalisation would apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamingPreview {
    pub platform: String,
    pub target_lufs: f64,
    pub gain_applied_db: f64,
}

/// What [`crate::master_file`] measured before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterReport {
    pub before: Loudness,
    pub after: Loudness,
    pub duration_sec: f64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Seconds spent in each stage, for benchmarks and logs.
    pub stage_seconds: Vec<(String, f64)>,
    /// Things the user should know: repaired input (NaN samples, damaged packets, a
    /// truncated file) or a loudness target that could not be reached. Empty when clean.
    #[serde(default)]
    pub warnings: Vec<String>,
}
