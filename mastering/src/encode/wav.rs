//! WAV output, 16 or 24-bit PCM, TPDF-dithered.
//!
//! Written directly (not through hound, which costs a call and a check per sample: 2.5×
//! slower here): the canonical 44-byte header for mono/stereo 16-bit, WAVE_FORMAT_EXTENSIBLE
//! (with the standard channel mask) for 24-bit or more than two channels, as Microsoft
//! recommends. Sizes are patched when the encoder finishes; a file that would pass the RIFF
//! 4 GiB limit is refused with an error rather than written corrupt.

use super::{BlockEncoder, DITHER_SEED, Monitor, Monitored, check_block};
use crate::dsp::dither::Ditherer;
use crate::error::MasterError;
use crate::meter::FastMeter;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// KSDATAFORMAT_SUBTYPE_PCM.
const PCM_GUID: [u8; 16] = [
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Streams dithered PCM to a WAV file.
pub struct WavEncoder {
    file: BufWriter<File>,
    quantizer: Ditherer,
    channels: usize,
    bytes_per_sample: usize,
    header_len: u64,
    data_bytes: u64,
    buf: Vec<u8>,
    /// The quantised block, one plane per channel.
    planes: Vec<Vec<i32>>,
    monitor: Option<Monitor>,
}

impl WavEncoder {
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        bits: u32,
    ) -> Result<WavEncoder, MasterError> {
        let ch = u16::try_from(channels)
            .map_err(|_| MasterError::Encode(format!("WAV: {channels} channels")))?;
        let header = header(sample_rate, ch, bits as u16, 0);
        let mut file = BufWriter::with_capacity(1 << 16, File::create(path)?);
        file.write_all(&header)?;
        Ok(WavEncoder {
            file,
            quantizer: Ditherer::new(bits as u16, DITHER_SEED)?,
            channels,
            bytes_per_sample: bits as usize / 8,
            header_len: header.len() as u64,
            data_bytes: 0,
            buf: Vec::new(),
            planes: Vec::new(),
            monitor: None,
        })
    }
}

/// The RIFF/WAVE header for `data_bytes` of PCM.
fn header(rate: u32, channels: u16, bits: u16, data_bytes: u32) -> Vec<u8> {
    let extensible = channels > 2 || bits > 16;
    let block_align = channels * bits / 8;
    let fmt_len: u32 = if extensible { 40 } else { 16 };
    let mut h = Vec::with_capacity(68);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(4 + 8 + fmt_len + 8 + data_bytes).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&(if extensible { 0xFFFEu16 } else { 1 }).to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if extensible {
        let mask: u32 = if channels <= 18 {
            (1u32 << channels) - 1
        } else {
            0
        };
        h.extend_from_slice(&22u16.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(&mask.to_le_bytes());
        h.extend_from_slice(&PCM_GUID);
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Interleaves integer planes into little-endian PCM of `bps` bytes per sample (`buf` is
/// overwritten). The sample width is a constant in each loop: with a run-time width every
/// sample's copy was a `memmove` call, which made 24-bit writing take 2× the time of
/// 16-bit (0.27 s against 0.13 s for the dense 321.8 s track).
fn pack_le(planes: &[Vec<i32>], bps: usize, buf: &mut Vec<u8>) {
    let channels = planes.len();
    let frames = planes.first().map_or(0, Vec::len);
    buf.clear();
    buf.resize(frames * channels * bps, 0);
    match (planes, bps) {
        ([l, r], 2) => pack_stereo::<2, 4>(l, r, buf),
        ([l, r], 3) => pack_stereo::<3, 6>(l, r, buf),
        (_, 2) => pack_planes::<2>(planes, buf),
        _ => pack_planes::<3>(planes, buf),
    }
}

/// Stereo frames of `FRAME` = 2 × `BPS` bytes.
fn pack_stereo<const BPS: usize, const FRAME: usize>(l: &[i32], r: &[i32], buf: &mut [u8]) {
    for ((dst, &a), &b) in buf.chunks_exact_mut(FRAME).zip(l).zip(r) {
        dst[..BPS].copy_from_slice(&a.to_le_bytes()[..BPS]);
        dst[BPS..].copy_from_slice(&b.to_le_bytes()[..BPS]);
    }
}

/// Any number of channels, one plane at a time.
fn pack_planes<const BPS: usize>(planes: &[Vec<i32>], buf: &mut [u8]) {
    let frame_bytes = planes.len() * BPS;
    for (c, plane) in planes.iter().enumerate() {
        for (frame, &v) in buf.chunks_exact_mut(frame_bytes).zip(plane) {
            frame[c * BPS..(c + 1) * BPS].copy_from_slice(&v.to_le_bytes()[..BPS]);
        }
    }
}

impl BlockEncoder for WavEncoder {
    fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        check_block(block, self.channels)?;
        self.quantizer.quantize_planar(block, &mut self.planes);
        pack_le(&self.planes, self.bytes_per_sample, &mut self.buf);
        self.data_bytes += self.buf.len() as u64;
        if self.header_len + self.data_bytes > u64::from(u32::MAX) {
            return Err(MasterError::Encode(
                "the output exceeds the 4 GiB WAV limit; choose FLAC".into(),
            ));
        }
        self.file.write_all(&self.buf)?;
        if let Some(monitor) = &mut self.monitor {
            monitor.add_planar(&self.planes)?;
        }
        Ok(())
    }

    fn monitor(&mut self, meter: FastMeter) -> bool {
        let bits = self.bytes_per_sample as u32 * 8;
        self.monitor = Some(Monitor::new(meter, self.channels, bits));
        true
    }

    fn take_monitor(&mut self) -> Option<Monitored> {
        self.monitor.take().map(Monitor::finish)
    }

    fn finish(mut self: Box<Self>) -> Result<(), MasterError> {
        let data = self.data_bytes as u32;
        let riff_len = (self.header_len - 8) as u32 + data;
        self.file.seek(SeekFrom::Start(4))?;
        self.file.write_all(&riff_len.to_le_bytes())?;
        self.file.seek(SeekFrom::Start(self.header_len - 4))?;
        self.file.write_all(&data.to_le_bytes())?;
        // Flush; durability (fsync before the caller's rename) is the caller's choice.
        self.file.flush()?;
        Ok(())
    }
}
