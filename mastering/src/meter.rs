//! ITU-R BS.1770-4 / EBU R128 loudness meter over planar blocks (the `ebur128` crate).
//!
//! [`LoudnessMeter`] measures integrated loudness (LUFS, gated), momentary (400 ms) and
//! short-term (3 s) loudness, loudness range (LRA, EBU Tech 3342), sample peak and true peak
//! (4× oversampled below 96 kHz, 2× from 96 kHz). Only what [`MeterMode`] asks for is
//! computed: true peak is the expensive part, so passes that only need the integrated
//! loudness leave it off.
//!
//! Channels follow BS.1770's default layout by position: 1 = a single front channel;
//! 2 = L, R; 5 = L, R, C, Ls, Rs; 6 = L, R, C, LFE (excluded), Ls, Rs; further channels are
//! not weighted (excluded). **Mono** is measured as what it is, one front channel, not as
//! "dual mono": a mono file of a -23 dBFS 1 kHz tone reads -26 LUFS, 3 LU below the same
//! tone on both channels of a stereo file. Mastering a mono file to -14 LUFS therefore makes
//! the mono signal itself 3 dB hotter than each channel of a stereo master at -14 LUFS; this
//! is what BS.1770 and the streaming services' meters do.
//!
//! Levels are reported in dB; a signal with no measurable level reads [`FLOOR_DB`] rather
//! than -∞, so every value is a finite number (JSON has no infinities).

use crate::error::MasterError;
use crate::report::Loudness;
use ebur128::{EbuR128, Mode};

pub(crate) mod fast;
pub(crate) mod true_peak;

pub use fast::FastMeter;
pub use true_peak::TruePeakMeter;

/// Level reported for "no signal" (silence, or too short to gate), dB.
pub const FLOOR_DB: f64 = -120.0;

/// What a meter computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterMode {
    /// Loudness range (implies short-term loudness).
    pub lra: bool,
    /// True peak (4× oversampling; the costly part).
    pub true_peak: bool,
}

impl MeterMode {
    /// Integrated loudness, momentary, short-term and sample peak only.
    pub const INTEGRATED: MeterMode = MeterMode {
        lra: false,
        true_peak: false,
    };
    /// Integrated loudness and true peak.
    pub const INTEGRATED_TRUE_PEAK: MeterMode = MeterMode {
        lra: false,
        true_peak: true,
    };
    /// Everything: integrated, LRA, sample and true peak.
    pub const FULL: MeterMode = MeterMode {
        lra: true,
        true_peak: true,
    };

    fn ebur128_mode(self) -> Mode {
        let mut mode = Mode::I | Mode::S | Mode::SAMPLE_PEAK;
        if self.lra {
            mode |= Mode::LRA;
        }
        if self.true_peak {
            mode |= Mode::TRUE_PEAK;
        }
        mode
    }
}

/// A streaming BS.1770 meter.
pub struct LoudnessMeter {
    inner: EbuR128,
    mode: MeterMode,
    channels: usize,
    rate: u32,
    frames: u64,
}

impl std::fmt::Debug for LoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessMeter")
            .field("mode", &self.mode)
            .field("channels", &self.channels)
            .field("rate", &self.rate)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

fn meter_err(e: ebur128::Error) -> MasterError {
    MasterError::InvalidParameter(format!("loudness meter: {e}"))
}

/// Linear amplitude to dB, floored at [`FLOOR_DB`].
pub fn amp_to_db(amp: f64) -> f64 {
    if amp > 0.0 {
        (20.0 * amp.log10()).max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

fn floor(lufs: f64) -> f64 {
    if lufs.is_finite() {
        lufs.max(FLOOR_DB)
    } else {
        FLOOR_DB
    }
}

impl LoudnessMeter {
    /// A meter for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32, mode: MeterMode) -> Result<LoudnessMeter, MasterError> {
        let ch = u32::try_from(channels)
            .map_err(|_| MasterError::InvalidParameter(format!("{channels} channels")))?;
        let inner = EbuR128::new(ch, rate, mode.ebur128_mode()).map_err(meter_err)?;
        Ok(LoudnessMeter {
            inner,
            mode,
            channels,
            rate,
            frames: 0,
        })
    }

    /// Adds one planar block (one slice per channel, equal lengths).
    pub fn add_block<S: AsRef<[f32]>>(&mut self, block: &[S]) -> Result<(), MasterError> {
        if block.len() != self.channels {
            return Err(MasterError::InvalidParameter(format!(
                "meter expects {} channels, block has {}",
                self.channels,
                block.len()
            )));
        }
        let mut planes: [&[f32]; crate::decode::MAX_CHANNELS] = [&[]; crate::decode::MAX_CHANNELS];
        if block.len() > planes.len() {
            return Err(MasterError::InvalidParameter("too many channels".into()));
        }
        for (dst, src) in planes.iter_mut().zip(block) {
            *dst = src.as_ref();
        }
        let planes = &planes[..block.len()];
        let frames = planes.first().map_or(0, |p| p.len());
        if planes.iter().any(|p| p.len() != frames) {
            return Err(MasterError::InvalidParameter(
                "channels of a block differ in length".into(),
            ));
        }
        self.inner
            .add_frames_planar_f32(planes)
            .map_err(meter_err)?;
        self.frames += frames as u64;
        Ok(())
    }

    /// Frames measured so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Seconds measured so far.
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.rate)
    }

    /// Integrated (gated) loudness, LUFS.
    pub fn integrated(&self) -> f64 {
        floor(self.inner.loudness_global().unwrap_or(f64::NEG_INFINITY))
    }

    /// Momentary loudness (last 400 ms), LUFS.
    pub fn momentary(&self) -> f64 {
        floor(self.inner.loudness_momentary().unwrap_or(f64::NEG_INFINITY))
    }

    /// Short-term loudness (last 3 s), LUFS.
    pub fn short_term(&self) -> f64 {
        floor(self.inner.loudness_shortterm().unwrap_or(f64::NEG_INFINITY))
    }

    /// Loudness range, LU (0 when not measured in this mode).
    pub fn lra(&self) -> f64 {
        if !self.mode.lra {
            return 0.0;
        }
        let lra = self.inner.loudness_range().unwrap_or(0.0);
        if lra.is_finite() { lra.max(0.0) } else { 0.0 }
    }

    /// Highest sample magnitude over all channels, dBFS.
    pub fn sample_peak_db(&self) -> f64 {
        let peak = (0..self.channels as u32)
            .filter_map(|c| self.inner.sample_peak(c).ok())
            .fold(0.0, f64::max);
        amp_to_db(peak)
    }

    /// Highest true peak over all channels, dBTP (the sample peak when true peak is off).
    pub fn true_peak_db(&self) -> f64 {
        if !self.mode.true_peak {
            return self.sample_peak_db();
        }
        let peak = (0..self.channels as u32)
            .filter_map(|c| self.inner.true_peak(c).ok())
            .fold(0.0, f64::max);
        amp_to_db(peak)
    }

    /// All four headline numbers.
    pub fn loudness(&self) -> Loudness {
        Loudness {
            lufs: self.integrated(),
            true_peak_db: self.true_peak_db(),
            sample_peak_db: self.sample_peak_db(),
            lra: self.lra(),
        }
    }
}

#[cfg(test)]
mod tests;
