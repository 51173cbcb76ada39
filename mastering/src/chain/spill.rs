//! Disk-backed buffer of planar `f32` audio: the chain's memory stays bounded however long
//! the track is (a 60-minute stereo track is 1.3 GB on disk, a few hundred kB in RAM).
//!
//! Samples are stored interleaved, little-endian `f32`, in an unnamed temporary file that the
//! OS deletes when the buffer is dropped (also on panic or kill). Written once, then read
//! back from the start any number of times.

use crate::error::MasterError;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

const IO_BUFFER: usize = 1 << 20;

/// A write-once, read-many spill file of planar blocks.
#[derive(Debug)]
pub struct SpillBuffer {
    writer: Option<BufWriter<File>>,
    file: Option<File>,
    channels: usize,
    frames: u64,
    bytes: Vec<u8>,
}

impl SpillBuffer {
    /// Creates the spill file in `dir` (use the output's directory: it is writable and on
    /// the data volume).
    pub fn new_in(dir: &Path, channels: usize) -> Result<SpillBuffer, MasterError> {
        let file = tempfile::tempfile_in(dir)?;
        Ok(SpillBuffer {
            writer: Some(BufWriter::with_capacity(IO_BUFFER, file)),
            file: None,
            channels,
            frames: 0,
            bytes: Vec::new(),
        })
    }

    /// Appends one planar block.
    pub fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        let writer = self.writer.as_mut().ok_or_else(|| {
            MasterError::InvalidParameter("spill buffer written after reading began".into())
        })?;
        let n = block.first().map_or(0, Vec::len);
        if block.len() != self.channels || block.iter().any(|p| p.len() != n) {
            return Err(MasterError::InvalidParameter(
                "spill block has the wrong shape".into(),
            ));
        }
        self.bytes.clear();
        self.bytes.resize(n * self.channels * 4, 0);
        let mut out = self.bytes.chunks_exact_mut(4);
        for i in 0..n {
            for (plane, dst) in block.iter().zip(&mut out) {
                dst.copy_from_slice(&plane[i].to_le_bytes());
            }
        }
        writer.write_all(&self.bytes)?;
        self.frames += n as u64;
        Ok(())
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The file, written out (ends writing on the first call).
    fn file(&mut self) -> Result<&mut File, MasterError> {
        if let Some(writer) = self.writer.take() {
            let file = writer
                .into_inner()
                .map_err(|e| MasterError::Io(e.into_error()))?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| MasterError::InvalidParameter("spill file missing".into()))
    }

    /// Frames `start .. start + n` into `block` (planar; ends writing). Fails past the end.
    pub fn read_at(
        &mut self,
        start: u64,
        n: usize,
        block: &mut Vec<Vec<f32>>,
    ) -> Result<(), MasterError> {
        if start.saturating_add(n as u64) > self.frames {
            return Err(MasterError::InvalidParameter(
                "spill read past the end".into(),
            ));
        }
        let channels = self.channels;
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.resize(n * channels * 4, 0);
        let file = self.file()?;
        file.seek(SeekFrom::Start(start * channels as u64 * 4))?;
        file.read_exact(&mut bytes)?;
        block.resize_with(channels, Vec::new);
        let stride = channels * 4;
        for (ch, plane) in block.iter_mut().enumerate() {
            plane.clear();
            plane.extend(
                bytes[ch * 4..]
                    .chunks(stride)
                    .take(n)
                    .map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
            );
        }
        self.bytes = bytes;
        Ok(())
    }

    /// A reader from the first frame (ends writing on the first call).
    pub fn reader(&mut self, block_frames: usize) -> Result<SpillReader<'_>, MasterError> {
        let (channels, frames) = (self.channels, self.frames);
        let file = self.file()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpillReader {
            reader: BufReader::with_capacity(IO_BUFFER, file),
            channels,
            remaining: frames,
            block_frames: block_frames.max(1),
            bytes: Vec::new(),
        })
    }
}

/// Reads a [`SpillBuffer`] back in planar blocks.
#[derive(Debug)]
pub struct SpillReader<'a> {
    reader: BufReader<&'a mut File>,
    channels: usize,
    remaining: u64,
    block_frames: usize,
    bytes: Vec<u8>,
}

impl SpillReader<'_> {
    /// Fills `block` with up to `block_frames` frames; returns how many (0 at the end).
    pub fn read_block(&mut self, block: &mut Vec<Vec<f32>>) -> Result<usize, MasterError> {
        let n = (self.block_frames as u64).min(self.remaining) as usize;
        block.resize_with(self.channels, Vec::new);
        for plane in block.iter_mut() {
            plane.clear();
        }
        if n == 0 {
            return Ok(0);
        }
        self.bytes.resize(n * self.channels * 4, 0);
        self.reader.read_exact(&mut self.bytes)?;
        let stride = self.channels * 4;
        for (ch, plane) in block.iter_mut().enumerate() {
            plane.resize(n, 0.0);
            let samples = self.bytes[ch * 4..].chunks(stride);
            for (dst, s) in plane.iter_mut().zip(samples) {
                *dst = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
