//! Where the DSP stages plug into the chain.
//!
//! The chain asks a [`StageFactory`] for three things, at three points of the run:
//! 1. [`StageFactory::pre_analysis`]: stages applied to the decoded input before it is
//!    analysed (DC removal).
//! 2. [`StageFactory::processing`]: stages designed from the analysis of the input (tonal
//!    balance EQ towards the style curve, dynamics relative to the measured loudness, M/S
//!    width). They run once; their output is spilled to disk.
//! 3. [`StageFactory::limiter`]: the look-ahead true-peak limiter to a ceiling. It runs in
//!    every pass of the loudness-correction loop and in the final pass (reset in between).
//!    [`StageFactory::limiter_model`] describes it to the chain's loudness model, which
//!    then finds the gain without those passes.
//!
//! Each stage is a [`crate::stage::BlockProcessor`]; the chain compensates their latency.
//! [`MasteringStages`] builds them from [`crate::dsp`].

use super::loudness_model::LimiterModel;
use super::pipeline::NamedStage;
use crate::dsp::limiter::TruePeakLimiter;
use crate::dsp::saturator::SoftSaturator;
use crate::dsp::spectrum::BandStereo;
use crate::dsp::styles::{LIMITER_DRIVE, StyleParams};
use crate::dsp::{self, Measured, dc::DcBlocker};
use crate::error::MasterError;
use crate::params::MasterParams;
use crate::report::Loudness;
use crate::stage::BlockProcessor;

/// What the processing stages may know about the (DC-removed) input.
#[derive(Debug, Clone)]
pub struct InputAnalysis {
    pub sample_rate: u32,
    pub channels: usize,
    /// Integrated loudness, true peak, sample peak and LRA.
    pub loudness: Loudness,
    /// Long-term average spectrum: octave-band power, `(centre Hz, dB re the 1 kHz band)`
    /// ([`crate::dsp::spectrum::OctaveAnalyzer::spectrum_db`]); empty when the 1 kHz band
    /// is silent.
    pub spectrum: Vec<(f64, f64)>,
    /// Per-band stereo statistics (empty unless stereo), for the EQ's correlation guard.
    pub band_stereo: Vec<BandStereo>,
    /// L/R correlation (1.0 for mono).
    pub stereo_correlation: f64,
    /// Crest factor, dB.
    pub crest_factor_db: f64,
}

/// Builds the DSP stages of a chain.
pub trait StageFactory {
    /// Stages before the analysis (e.g. DC removal).
    fn pre_analysis(
        &self,
        sample_rate: u32,
        channels: usize,
    ) -> Result<Vec<NamedStage>, MasterError>;

    /// Stages designed from the analysis (EQ, dynamics, width), in order.
    fn processing(
        &self,
        params: &MasterParams,
        input: &InputAnalysis,
    ) -> Result<Vec<NamedStage>, MasterError>;

    /// The true-peak limiter holding `ceiling_db` dBTP, tuned for `params.style`, at drive
    /// level `drive` (0: the style's own settings; higher levels are faster and louder).
    fn limiter(
        &self,
        params: &MasterParams,
        format: (u32, usize),
        ceiling_db: f64,
        drive: usize,
    ) -> Result<NamedStage, MasterError>;

    /// The highest drive level [`Self::limiter`] offers.
    fn max_drive(&self) -> usize {
        0
    }

    /// What the loudness model needs of [`Self::limiter`] at the same arguments, when that
    /// stage is a [`TruePeakLimiter`] alone; `None` (the default) for any other stage: the
    /// chain then measures each gain it tries with a pass of the limiter over the track.
    fn limiter_model(
        &self,
        _params: &MasterParams,
        _format: (u32, usize),
        _ceiling_db: f64,
        _drive: usize,
    ) -> Result<Option<LimiterModel>, MasterError> {
        Ok(None)
    }
}

/// Knee of the saturator of the top drive level, as a fraction of the ceiling (-6 dB).
pub const SATURATOR_KNEE: f64 = 0.5;

/// Processors run one after the other as one stage (latencies add up).
struct Chained(Vec<Box<dyn BlockProcessor>>);

impl BlockProcessor for Chained {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        for stage in &mut self.0 {
            stage.process(block);
        }
    }

    fn latency(&self) -> usize {
        self.0.iter().map(|s| s.latency()).sum()
    }

    fn reset(&mut self) {
        for stage in &mut self.0 {
            stage.reset();
        }
    }
}

/// The mastering stages of [`crate::dsp`]: DC blocker; linear-phase EQ toward the style's
/// curve (correlation-guarded), compressor relative to the measured loudness, M/S width;
/// [`TruePeakLimiter`] with the style's release.
#[derive(Debug, Clone, Copy, Default)]
pub struct MasteringStages;

impl StageFactory for MasteringStages {
    fn pre_analysis(
        &self,
        sample_rate: u32,
        channels: usize,
    ) -> Result<Vec<NamedStage>, MasterError> {
        Ok(vec![NamedStage::new(
            "dc",
            Box::new(DcBlocker::new(sample_rate, channels)?),
        )])
    }

    fn processing(
        &self,
        params: &MasterParams,
        input: &InputAnalysis,
    ) -> Result<Vec<NamedStage>, MasterError> {
        let measured = Measured {
            integrated_lufs: input.loudness.lufs,
            spectrum: input.spectrum.clone(),
            band_stereo: input.band_stereo.clone(),
        };
        Ok(
            dsp::processing_stages(params.style, input.sample_rate, input.channels, &measured)?
                .into_iter()
                .map(|(name, processor)| NamedStage::new(name, processor))
                .collect(),
        )
    }

    fn limiter(
        &self,
        params: &MasterParams,
        (sample_rate, channels): (u32, usize),
        ceiling_db: f64,
        drive: usize,
    ) -> Result<NamedStage, MasterError> {
        let settings = StyleParams::of(params.style).limiter_settings_driven(ceiling_db, drive);
        let limiter = Box::new(TruePeakLimiter::new(sample_rate, channels, &settings)?);
        if drive <= LIMITER_DRIVE.len() {
            return Ok(NamedStage::new("limiter", limiter));
        }
        let saturator = Box::new(SoftSaturator::new(ceiling_db, SATURATOR_KNEE)?);
        Ok(NamedStage::new(
            "limiter",
            Box::new(Chained(vec![saturator, limiter])),
        ))
    }

    /// The limiter's drive levels, then one more: the fastest limiter after a
    /// [`SoftSaturator`].
    fn max_drive(&self) -> usize {
        LIMITER_DRIVE.len() + 1
    }

    /// Every drive level but the top one (whose saturator the model cannot predict).
    fn limiter_model(
        &self,
        params: &MasterParams,
        (sample_rate, channels): (u32, usize),
        ceiling_db: f64,
        drive: usize,
    ) -> Result<Option<LimiterModel>, MasterError> {
        if drive > LIMITER_DRIVE.len() {
            return Ok(None);
        }
        let settings = StyleParams::of(params.style).limiter_settings_driven(ceiling_db, drive);
        Ok(Some(LimiterModel::of(sample_rate, channels, &settings)?))
    }
}
