//! Streaming encoders: WAV 16/24 (hound), FLAC 16/24 (flacenc, frame by frame), MP3 CBR
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
mod mp3;
mod wav;

use crate::error::MasterError;
use crate::params::OutputFormat;
use std::path::Path;

/// Seed of the dither generator: fixed so that output is reproducible.
pub const DITHER_SEED: u64 = 0x6D61_6769_636D_6173;

/// A streaming encoder of planar `f32` blocks.
pub trait BlockEncoder: Send {
    /// Encodes one planar block (one slice per channel, all the same length).
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError>;

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
