//! FLAC output, encoded frame by frame so memory stays bounded.
//!
//! Samples are collected per channel into frames of [`FLAC_BLOCK`] samples; each full
//! frame is coded by our own [`FrameCoder`](super::flac_frame::FrameCoder) (fixed
//! predictors, partitioned Rice residuals, stereo decorrelation: see its module for what it
//! does and why not flacenc) and written out at once. The 42-byte header (`fLaC` +
//! STREAMINFO) is written by us, first as a placeholder and then rewritten with the final
//! totals: min and max block size are both the fixed block size (the last, shorter frame is
//! allowed by the format and must not lower the minimum, or symphonia rejects the file),
//! and the MD5 field is zero (= "not computed", allowed by the specification; it would cost
//! about as much as the coding itself).

use super::flac_frame::FrameCoder;
use super::{BlockEncoder, DITHER_SEED, Monitor, Monitored, check_block};
use crate::dsp::dither::Ditherer;
use crate::error::MasterError;
use crate::meter::FastMeter;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// Frames per FLAC frame (the reference encoder's default).
pub const FLAC_BLOCK: usize = 4096;
/// FLAC allows at most this many channels.
pub const FLAC_MAX_CHANNELS: usize = 8;

/// Streams FLAC frames to a file.
pub struct FlacEncoder {
    file: BufWriter<File>,
    coder: FrameCoder,
    quantizer: Ditherer,
    /// Samples waiting for a full frame, one plane per channel.
    pending: Vec<Vec<i32>>,
    channels: usize,
    sample_rate: u32,
    bits: u32,
    frame_number: u64,
    total_frames: u64,
    min_frame_bytes: usize,
    max_frame_bytes: usize,
    /// The quantised block, planar.
    planes: Vec<Vec<i32>>,
    monitor: Option<Monitor>,
}

impl FlacEncoder {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        bits: u32,
    ) -> Result<FlacEncoder, MasterError> {
        if channels > FLAC_MAX_CHANNELS {
            return Err(MasterError::Encode(format!(
                "FLAC stores at most {FLAC_MAX_CHANNELS} channels, the audio has {channels}"
            )));
        }
        if sample_rate == 0 || sample_rate >= 1 << 20 {
            return Err(MasterError::Encode(format!(
                "FLAC: sample rate {sample_rate} Hz out of range"
            )));
        }
        let mut file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        file.write_all(&header_bytes(sample_rate, channels, bits, 0, 0, 0))?;
        Ok(FlacEncoder {
            file,
            coder: FrameCoder::default(),
            quantizer: Ditherer::new(bits as u16, DITHER_SEED)?,
            pending: vec![Vec::with_capacity(FLAC_BLOCK); channels],
            channels,
            sample_rate,
            bits,
            frame_number: 0,
            total_frames: 0,
            min_frame_bytes: usize::MAX,
            max_frame_bytes: 0,
            planes: Vec::new(),
            monitor: None,
        })
    }

    fn encode_pending(&mut self) -> Result<(), MasterError> {
        let frames = self.pending.first().map_or(0, Vec::len);
        if frames == 0 {
            return Ok(());
        }
        let bytes = self.coder.encode(
            &self.pending,
            self.bits,
            self.sample_rate,
            FLAC_BLOCK,
            self.frame_number,
        );
        self.file.write_all(bytes)?;
        self.min_frame_bytes = self.min_frame_bytes.min(bytes.len());
        self.max_frame_bytes = self.max_frame_bytes.max(bytes.len());
        self.frame_number += 1;
        self.total_frames += frames as u64;
        for plane in &mut self.pending {
            plane.clear();
        }
        Ok(())
    }
}

impl BlockEncoder for FlacEncoder {
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        let frames = check_block(block, self.channels)?;
        self.quantizer.quantize_planar(block, &mut self.planes);
        if let Some(monitor) = &mut self.monitor {
            monitor.add_planar(&self.planes)?;
        }
        let mut done = 0;
        while done < frames {
            let have = self.pending[0].len();
            let take = (FLAC_BLOCK - have).min(frames - done);
            for (dst, src) in self.pending.iter_mut().zip(&self.planes) {
                dst.extend_from_slice(&src[done..done + take]);
            }
            done += take;
            if have + take == FLAC_BLOCK {
                self.encode_pending()?;
            }
        }
        Ok(())
    }

    fn monitor(&mut self, meter: FastMeter) -> bool {
        self.monitor = Some(Monitor::new(meter, self.channels, self.bits));
        true
    }

    fn take_monitor(&mut self) -> Option<Monitored> {
        self.monitor.take().map(Monitor::finish)
    }

    fn finish(mut self: Box<Self>) -> Result<(), MasterError> {
        self.encode_pending()?;
        let min_frame = if self.frame_number == 0 {
            0
        } else {
            self.min_frame_bytes
        };
        let header = header_bytes(
            self.sample_rate,
            self.channels,
            self.bits,
            self.total_frames,
            min_frame,
            self.max_frame_bytes,
        );
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header)?;
        // Flush; durability (fsync before the caller's rename) is the caller's choice.
        self.file.flush()?;
        Ok(())
    }
}

/// `fLaC` marker, then the STREAMINFO block (flagged as the last metadata block).
fn header_bytes(
    sample_rate: u32,
    channels: usize,
    bits: u32,
    total_frames: u64,
    min_frame_bytes: usize,
    max_frame_bytes: usize,
) -> [u8; 42] {
    let mut h = [0u8; 42];
    h[0..4].copy_from_slice(b"fLaC");
    h[4] = 0x80; // last metadata block, type 0 = STREAMINFO
    h[5..8].copy_from_slice(&[0, 0, 34]);
    let si = &mut h[8..];
    let block = FLAC_BLOCK as u16;
    si[0..2].copy_from_slice(&block.to_be_bytes());
    si[2..4].copy_from_slice(&block.to_be_bytes());
    let min = (min_frame_bytes as u32).min(0xFF_FFFF).to_be_bytes();
    let max = (max_frame_bytes as u32).min(0xFF_FFFF).to_be_bytes();
    si[4..7].copy_from_slice(&min[1..]);
    si[7..10].copy_from_slice(&max[1..]);
    // 20 bits rate | 3 bits channels-1 | 5 bits bps-1 | 36 bits total samples
    let packed: u64 = (u64::from(sample_rate) & 0xF_FFFF) << 44
        | ((channels as u64 - 1) & 0x7) << 41
        | (u64::from(bits - 1) & 0x1F) << 36
        | (total_frames & 0xF_FFFF_FFFF);
    si[10..18].copy_from_slice(&packed.to_be_bytes());
    // si[18..34]: MD5, left zero = not computed.
    h
}
