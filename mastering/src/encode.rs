//! Streaming encoders: WAV 16/24 (own writer), FLAC 16/24 (our own fixed-predictor
//! coder, frame by frame), MP3 CBR
//! (LAME through mp3lame-encoder).
//!
//! Every encoder accepts planar `f32` blocks of any length through [`BlockEncoder::write`]
//! and streams to its file: memory stays bounded by one block plus one codec frame.
//!
//! Quantisation (WAV and FLAC): both 16-bit and 24-bit outputs get TPDF dither of ±1 LSB
//! from a fixed-seed generator ([`crate::dsp::dither::Ditherer`]), so the same input always gives the same
//! bytes. Values beyond full scale after dither are clamped to the integer range; the chain
//! keeps the true peak below the ceiling, so this only guards against overflow. MP3 gets the
//! float signal directly: LAME quantises in its own domain, where dither is meaningless.

mod flac;
mod flac_frame;
mod mp3;
mod wav;

use crate::error::MasterError;
use crate::meter::FastMeter;
use crate::params::OutputFormat;
use std::path::Path;

/// Seed of the dither generator: fixed so that output is reproducible.
pub const DITHER_SEED: u64 = 0x6D61_6769_636D_6173;

/// A streaming encoder of planar `f32` blocks.
pub trait BlockEncoder: Send {
    /// Encodes one planar block (one slice per channel, all the same length).
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError>;

    /// Lossless encoders measure what they write: from this call on, every quantised sample
    /// is also fed to `meter` exactly as a decoder reads it back (integer / 2^(bits−1)),
    /// so the file's loudness is known without decoding it. Returns false (and drops the
    /// meter) for lossy formats, whose file must be decoded to be measured.
    fn monitor(&mut self, _meter: FastMeter) -> bool {
        false
    }

    /// The meter given to [`Self::monitor`] and the frames it measured, after the last
    /// [`Self::write`].
    fn take_monitor(&mut self) -> Option<Monitored> {
        None
    }

    /// Flushes the codec, completes the headers and closes the file. The data is handed to
    /// the OS but not fsynced: a caller that renames the file into place and needs it to
    /// survive a power cut syncs it itself.
    fn finish(self: Box<Self>) -> Result<(), MasterError>;
}

/// Creates `path` and returns an encoder for `channels` channels at `sample_rate`.
///
/// Errors are [`MasterError::Encode`] for combinations the format cannot store (FLAC above
/// 8 channels, MP3 above 2 channels) and [`MasterError::Io`] when the file cannot be created.
pub fn create_encoder(
    path: &Path,
    format: OutputFormat,
    sample_rate: u32,
    channels: usize,
) -> Result<Box<dyn BlockEncoder>, MasterError> {
    if channels == 0 {
        return Err(MasterError::Encode("no channels to encode".into()));
    }
    match format {
        OutputFormat::Wav { bit_depth } => Ok(Box::new(wav::WavEncoder::create(
            path,
            sample_rate,
            channels,
            check_depth(bit_depth)?,
        )?)),
        OutputFormat::Flac { bit_depth } => Ok(Box::new(flac::FlacEncoder::create(
            path,
            sample_rate,
            channels,
            check_depth(bit_depth)?,
        )?)),
        OutputFormat::Mp3 { bitrate_kbps } => Ok(Box::new(mp3::Mp3Encoder::create(
            path,
            sample_rate,
            channels,
            bitrate_kbps,
        )?)),
    }
}

/// What a monitoring encoder measured of the samples it wrote.
#[derive(Debug)]
pub struct Monitored {
    /// The meter, fed every written sample.
    pub meter: FastMeter,
    /// Frames written.
    pub frames: u64,
    /// Seconds spent metering.
    pub seconds: f64,
}

/// Meters planar integer samples of `bits` bits as a decoder reads them back:
/// `v / 2^(bits−1)` in `f32` (exact: the integer has at most 24 significant bits), which is
/// how symphonia converts 16- and 24-bit PCM and FLAC.
#[derive(Debug)]
pub(crate) struct Monitor {
    meter: FastMeter,
    planes: Vec<Vec<f32>>,
    scale: f32,
    frames: u64,
    seconds: f64,
}

impl Monitor {
    pub(crate) fn new(meter: FastMeter, channels: usize, bits: u32) -> Monitor {
        Monitor {
            meter,
            planes: vec![Vec::new(); channels],
            scale: 1.0 / (1u32 << (bits - 1)) as f32,
            frames: 0,
            seconds: 0.0,
        }
    }

    /// Measures one planar block of integer samples (planes of equal length).
    pub(crate) fn add_planar(&mut self, ints: &[Vec<i32>]) -> Result<(), MasterError> {
        let started = std::time::Instant::now();
        self.planes.resize_with(ints.len(), Vec::new);
        for (plane, src) in self.planes.iter_mut().zip(ints) {
            plane.clear();
            plane.extend(src.iter().map(|&v| v as f32 * self.scale));
        }
        self.frames += ints.first().map_or(0, Vec::len) as u64;
        let result = self.meter.add_block(&self.planes);
        self.seconds += started.elapsed().as_secs_f64();
        result
    }

    pub(crate) fn finish(self) -> Monitored {
        Monitored {
            meter: self.meter,
            frames: self.frames,
            seconds: self.seconds,
        }
    }
}

fn check_depth(bits: u16) -> Result<u32, MasterError> {
    match bits {
        16 | 24 => Ok(u32::from(bits)),
        other => Err(MasterError::InvalidParameter(format!(
            "bit depth must be 16 or 24, got {other}"
        ))),
    }
}

fn check_block(block: &[Vec<f32>], channels: usize) -> Result<usize, MasterError> {
    if block.len() != channels {
        return Err(MasterError::Encode(format!(
            "block has {} channels, the encoder {channels}",
            block.len()
        )));
    }
    let frames = block.first().map_or(0, Vec::len);
    if block.iter().any(|p| p.len() != frames) {
        return Err(MasterError::Encode(
            "channels of a block differ in length".into(),
        ));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests;
