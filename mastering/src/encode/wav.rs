//! WAV output through hound, 16 or 24-bit PCM, TPDF-dithered.

use super::{BlockEncoder, DITHER_SEED, TpdfQuantizer, check_block};
use crate::error::MasterError;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Streams dithered PCM to a WAV file.
pub struct WavEncoder {
    writer: hound::WavWriter<BufWriter<File>>,
    quantizer: TpdfQuantizer,
    channels: usize,
    bits: u32,
}

impl WavEncoder {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        bits: u32,
    ) -> Result<WavEncoder, MasterError> {
        let spec = hound::WavSpec {
            channels: u16::try_from(channels)
                .map_err(|_| MasterError::Encode(format!("{channels} channels")))?,
            sample_rate,
            bits_per_sample: bits as u16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(hound_error)?;
        Ok(WavEncoder {
            writer,
            quantizer: TpdfQuantizer::new(bits, DITHER_SEED),
            channels,
            bits,
        })
    }
}

fn hound_error(e: hound::Error) -> MasterError {
    match e {
        hound::Error::IoError(io) => MasterError::Io(io),
        other => MasterError::Encode(format!("WAV: {other}")),
    }
}

impl BlockEncoder for WavEncoder {
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        let frames = check_block(block, self.channels)?;
        for n in 0..frames {
            for plane in block {
                let v = self.quantizer.quantize(plane[n]);
                if self.bits == 16 {
                    self.writer.write_sample(v as i16).map_err(hound_error)?;
                } else {
                    self.writer.write_sample(v).map_err(hound_error)?;
                }
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), MasterError> {
        self.writer.finalize().map_err(hound_error)
    }
}
