//! The processing stages of the mastering chain.
//!
//! Every stage implements [`BlockProcessor`]: planar blocks
//! (one `Vec<f32>` per channel), processed in place, any block length. Each stage validates
//! its parameters and allocates everything it needs in its constructor (errors are
//! [`DspError`]); `process` never allocates.
//!
//! Chain order (see `docs/QUALITY.md` §3): [`dc`] → [`eq`] → [`dynamics`] →
//! [`width`] → gain to target → [`limiter`] → [`dither`]. [`build_stages`] builds the
//! pre-limiter part for a [`Style`]; the caller builds the
//! [`TruePeakLimiter`](limiter::TruePeakLimiter) itself because it runs inside the
//! loudness-correction loop.
//!
//! Supported formats: 1 to [`MAX_CHANNELS`] channels, [`MIN_SAMPLE_RATE`] to
//! [`MAX_SAMPLE_RATE`] Hz.

pub mod dc;
pub mod dither;
pub mod dynamics;
pub mod eq;
pub mod limiter;
pub mod saturator;
pub mod spectrum;
pub mod styles;
pub mod width;

#[cfg(test)]
mod quality_tests;
#[cfg(test)]
pub(crate) mod test_signals;

use crate::params::Style;
use crate::stage::BlockProcessor;

/// Lowest sample rate a stage accepts, Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate a stage accepts, Hz.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Most channels a stage accepts (as many as the decoder).
pub const MAX_CHANNELS: usize = 32;

/// Why a DSP stage could not be built. Processing itself cannot fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DspError {
    /// The sample rate is outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    #[error("sample rate {0} Hz is outside the supported 8000..=192000 Hz")]
    SampleRate(u32),
    /// The channel count is 0 or above [`MAX_CHANNELS`].
    #[error("channel count {0} is outside the supported 1..=32")]
    Channels(usize),
    /// A stage parameter is out of range or not a finite number; the message names it.
    #[error("invalid DSP parameter: {0}")]
    Parameter(String),
}

impl From<DspError> for crate::MasterError {
    fn from(err: DspError) -> Self {
        crate::MasterError::InvalidParameter(err.to_string())
    }
}

/// Checks the format every stage shares.
pub(crate) fn check_format(sample_rate: u32, channels: usize) -> Result<(), DspError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(DspError::SampleRate(sample_rate));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(DspError::Channels(channels));
    }
    Ok(())
}

/// Checks that `value` is finite and within `lo..=hi`; `name` appears in the error.
pub(crate) fn check_range(name: &str, value: f64, lo: f64, hi: f64) -> Result<f64, DspError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(DspError::Parameter(format!(
            "{name} must be a number from {lo} to {hi}, got {value}"
        )))
    }
}

/// Converts decibels to a linear amplitude factor.
pub fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Converts a linear amplitude factor to decibels (`-inf` for 0).
pub fn lin_to_db(lin: f64) -> f64 {
    20.0 * lin.log10()
}

/// What the analysis measured on the input, as the stages need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Integrated loudness of the input (ITU-R BS.1770), LUFS. Dynamics thresholds are
    /// relative to it.
    pub integrated_lufs: f64,
    /// Long-term average spectrum in octave bands, `(centre Hz, dB re the 1 kHz band)`.
    /// Each band's level is the signal *power in the whole octave* (what an octave-band
    /// analyser reads: pink noise is flat), not a per-Hz density.
    /// [`spectrum::OctaveAnalyzer::spectrum_db`] measures it in this convention.
    pub spectrum: Vec<(f64, f64)>,
    /// Per-band stereo statistics ([`spectrum::OctaveAnalyzer::band_stereo`]); the EQ uses
    /// them to keep the L/R correlation change within
    /// [`eq::MAX_CORRELATION_CHANGE`]. Empty for mono or when not measured (then the EQ
    /// correction is not limited for correlation).
    pub band_stereo: Vec<spectrum::BandStereo>,
}

impl Measured {
    /// Combines the integrated loudness (from a BS.1770 meter such as `ebur128`) with the
    /// spectrum and per-band stereo statistics of an [`spectrum::OctaveAnalyzer`] that was
    /// fed the whole input.
    pub fn from_analyzer(integrated_lufs: f64, analyzer: &spectrum::OctaveAnalyzer) -> Self {
        Measured {
            integrated_lufs,
            spectrum: analyzer.spectrum_db(),
            band_stereo: analyzer.band_stereo(),
        }
    }
}

/// Builds the pre-limiter stages for `style`, in chain order: DC removal → tonal-balance EQ
/// → dynamics → M/S width. The caller adds gain and the
/// [`TruePeakLimiter`](limiter::TruePeakLimiter). The chain runs the DC blocker before its
/// analysis and the rest ([`processing_stages`]) after it.
pub fn build_stages(
    style: Style,
    sample_rate: u32,
    channels: usize,
    measured: &Measured,
) -> Result<Vec<Box<dyn BlockProcessor>>, DspError> {
    let mut stages: Vec<Box<dyn BlockProcessor>> =
        vec![Box::new(dc::DcBlocker::new(sample_rate, channels)?)];
    stages.extend(
        processing_stages(style, sample_rate, channels, measured)?
            .into_iter()
            .map(|(_, stage)| stage),
    );
    Ok(stages)
}

/// A stage and its name (used in timings).
pub type NamedProcessor = (&'static str, Box<dyn BlockProcessor>);

/// The stages designed from the analysis, named and in chain order: tonal-balance EQ
/// (`equalizer`) → dynamics (`dynamics`) → M/S width (`width`).
///
/// The EQ correction is limited so that its predicted L/R correlation change stays within
/// [`eq::MAX_CORRELATION_CHANGE`] (when `measured.band_stereo` is given). The EQ is left out
/// when `measured.spectrum` is empty (nothing to correct against) and
/// the width stage when the style's width is exactly 1.0 or the signal is not stereo.
pub fn processing_stages(
    style: Style,
    sample_rate: u32,
    channels: usize,
    measured: &Measured,
) -> Result<Vec<NamedProcessor>, DspError> {
    check_format(sample_rate, channels)?;
    let params = styles::StyleParams::of(style);
    let mut stages: Vec<NamedProcessor> = Vec::with_capacity(3);
    if !measured.spectrum.is_empty() {
        let correction = eq::design_correction(
            &measured.spectrum,
            &params.target_curve(),
            params.eq_amount,
            eq::MAX_CORRECTION_DB,
        )?;
        let correction = eq::limit_for_correlation(
            &correction,
            &measured.band_stereo,
            eq::MAX_CORRELATION_CHANGE,
        );
        stages.push((
            "equalizer",
            Box::new(eq::LinearPhaseEq::new(sample_rate, channels, &correction)?),
        ));
    }
    stages.push((
        "dynamics",
        Box::new(dynamics::Compressor::new(
            sample_rate,
            channels,
            measured.integrated_lufs,
            &params.compressor,
        )?),
    ));
    if channels == 2 && params.width != 1.0 {
        stages.push((
            "width",
            Box::new(width::StereoWidth::new(
                sample_rate,
                channels,
                params.width,
            )?),
        ));
    }
    Ok(stages)
}

/// Total latency of a list of stages, samples.
pub fn total_latency(stages: &[Box<dyn BlockProcessor>]) -> usize {
    stages.iter().map(|s| s.latency()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat_measured() -> Measured {
        Measured {
            integrated_lufs: -18.0,
            spectrum: styles::StyleParams::of(Style::Standard)
                .target_curve()
                .to_vec(),
            // (the standard curve measured: the EQ is built but corrects little)
            band_stereo: vec![],
        }
    }

    #[test]
    fn build_stages_orders_and_validates() {
        let stages = build_stages(Style::Standard, 44_100, 2, &flat_measured()).unwrap();
        // DC, EQ, dynamics; standard has width 1.0 so no width stage.
        assert_eq!(stages.len(), 3);
        assert!(total_latency(&stages) > 0);
        let wide = build_stages(Style::Edm, 48_000, 2, &flat_measured()).unwrap();
        assert_eq!(wide.len(), 4);
        let mono = build_stages(Style::Edm, 48_000, 1, &flat_measured()).unwrap();
        assert_eq!(mono.len(), 3);
        assert_eq!(
            build_stages(Style::Standard, 4_000, 2, &flat_measured()).err(),
            Some(DspError::SampleRate(4_000))
        );
        assert_eq!(
            build_stages(Style::Standard, 44_100, 0, &flat_measured()).err(),
            Some(DspError::Channels(0))
        );
        let bad = Measured {
            integrated_lufs: f64::NAN,
            spectrum: vec![],
            band_stereo: vec![],
        };
        assert!(build_stages(Style::Standard, 44_100, 2, &bad).is_err());
    }

    #[test]
    fn every_style_builds_at_edge_formats() {
        for style in Style::ALL {
            for (rate, ch) in [(8_000, 1), (44_100, 2), (192_000, 6)] {
                let stages = build_stages(style, rate, ch, &flat_measured());
                assert!(stages.is_ok(), "{style} {rate} {ch}: {:?}", stages.err());
            }
        }
    }

    #[test]
    fn db_conversions_round_trip() {
        assert!((lin_to_db(db_to_lin(-6.0)) + 6.0).abs() < 1e-12);
        assert!((db_to_lin(20.0) - 10.0).abs() < 1e-12);
    }
}
