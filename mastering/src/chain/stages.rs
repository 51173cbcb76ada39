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
//!
//! Each stage is a [`crate::stage::BlockProcessor`]; the chain compensates their latency.
//! [`InterimStages`] is the factory used until the dsp branch (`mastering/src/dsp/`) is
//! merged: no pre-analysis or processing stages, and [`super::StandInLimiter`].

use super::pipeline::NamedStage;
use super::standin_limiter::StandInLimiter;
use crate::error::MasterError;
use crate::params::MasterParams;
use crate::report::{Loudness, SpectrumBand};

/// What the processing stages may know about the (DC-removed) input.
#[derive(Debug, Clone)]
pub struct InputAnalysis {
    pub sample_rate: u32,
    pub channels: usize,
    /// Integrated loudness, true peak, sample peak and LRA.
    pub loudness: Loudness,
    /// Long-term average spectrum in octave bands, dB re 1 kHz.
    pub spectrum: Vec<SpectrumBand>,
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

    /// The true-peak limiter holding `ceiling_db` dBTP.
    fn limiter(
        &self,
        sample_rate: u32,
        channels: usize,
        ceiling_db: f64,
    ) -> Result<NamedStage, MasterError>;
}

/// The stages available before the dsp branch lands: only the stand-in limiter.
#[derive(Debug, Clone, Copy, Default)]
pub struct InterimStages;

impl StageFactory for InterimStages {
    fn pre_analysis(&self, _: u32, _: usize) -> Result<Vec<NamedStage>, MasterError> {
        Ok(Vec::new())
    }

    fn processing(
        &self,
        _: &MasterParams,
        _: &InputAnalysis,
    ) -> Result<Vec<NamedStage>, MasterError> {
        Ok(Vec::new())
    }

    fn limiter(
        &self,
        sample_rate: u32,
        channels: usize,
        ceiling_db: f64,
    ) -> Result<NamedStage, MasterError> {
        Ok(NamedStage::new(
            "limiter (stand-in)",
            Box::new(StandInLimiter::new(channels, sample_rate, ceiling_db)),
        ))
    }
}
