//! Where the chain keeps the track between passes: in memory when its planar `f32` copy
//! fits [`MEMORY_BUDGET_BYTES`], otherwise in a disk-backed [`SpillBuffer`].
//!
//! docs/QUALITY.md §4 allows one full `f32` copy of the track plus bounded buffers, and a
//! 60-minute stereo input must master in under 512 MB: a track up to the budget (about
//! 12 minutes of 44.1 kHz stereo) stays in RAM, where the passes cost a `memcpy` instead of
//! a disk round trip; a longer one (or one whose length the header does not tell and that
//! grows past the budget) goes to disk. The processing pass rewrites the track **in
//! place** in memory ([`Rewrite`]), so there is never a second copy.

use super::spill::{SpillBuffer, SpillReader};
use crate::error::MasterError;
use std::path::{Path, PathBuf};

/// Most bytes of `f32` audio the chain keeps in memory; longer tracks spill to disk.
pub const MEMORY_BUDGET_BYTES: u64 = 256 << 20;

/// Frames moved at a time when a memory track migrates to disk.
const MIGRATE_FRAMES: usize = 1 << 15;

/// A write-once, read-many store of a planar track; see the module documentation.
#[derive(Debug)]
pub enum TrackStore {
    /// The whole track in RAM, one `Vec` per channel.
    Memory {
        planes: Vec<Vec<f32>>,
        /// Directory for a spill file should the track outgrow the budget.
        dir: PathBuf,
        budget: u64,
    },
    /// The track in a temporary file.
    Disk(SpillBuffer),
}

impl TrackStore {
    /// A store for `channels` channels of a track expected to be `expected_frames` long
    /// (0 when unknown), spilling into `dir` when it is (or grows) over `budget` bytes.
    pub fn new(
        dir: &Path,
        channels: usize,
        expected_frames: u64,
        budget: u64,
    ) -> Result<TrackStore, MasterError> {
        let bytes = expected_frames
            .saturating_mul(channels as u64)
            .saturating_mul(4);
        if bytes > budget {
            return Ok(TrackStore::Disk(SpillBuffer::new_in(dir, channels)?));
        }
        // Reserve what the header announces (plus a little for a header that rounds
        // down), so the planes never reallocate (a doubling would briefly hold two copies).
        let reserve = expected_frames as usize + expected_frames as usize / 64;
        Ok(TrackStore::Memory {
            planes: (0..channels).map(|_| Vec::with_capacity(reserve)).collect(),
            dir: dir.to_path_buf(),
            budget,
        })
    }

    /// True when the track is held in RAM.
    pub fn in_memory(&self) -> bool {
        matches!(self, TrackStore::Memory { .. })
    }

    /// Frames stored.
    pub fn frames(&self) -> u64 {
        match self {
            TrackStore::Memory { planes, .. } => planes.first().map_or(0, Vec::len) as u64,
            TrackStore::Disk(spill) => spill.frames(),
        }
    }

    /// Appends one planar block (moving the track to disk if it outgrows the budget).
    pub fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        match self {
            TrackStore::Disk(spill) => spill.write(block),
            TrackStore::Memory {
                planes,
                dir,
                budget,
            } => {
                let n = block.first().map_or(0, Vec::len);
                if block.len() != planes.len() || block.iter().any(|p| p.len() != n) {
                    return Err(MasterError::InvalidParameter(
                        "track block has the wrong shape".into(),
                    ));
                }
                let have = planes.first().map_or(0, Vec::len);
                let bytes = ((have + n) * planes.len() * 4) as u64;
                if bytes > *budget {
                    let mut spill = SpillBuffer::new_in(dir, planes.len())?;
                    migrate(planes, &mut spill)?;
                    spill.write(block)?;
                    *self = TrackStore::Disk(spill);
                    return Ok(());
                }
                for (plane, src) in planes.iter_mut().zip(block) {
                    plane.extend_from_slice(src);
                }
                Ok(())
            }
        }
    }

    /// Frames `start .. start + n` into `block` (planar; ends writing): random access, for
    /// the loudness model's refinement. Fails past the end.
    pub fn read_at(
        &mut self,
        start: u64,
        n: usize,
        block: &mut Vec<Vec<f32>>,
    ) -> Result<(), MasterError> {
        match self {
            TrackStore::Disk(spill) => spill.read_at(start, n, block),
            TrackStore::Memory { planes, .. } => {
                let total = planes.first().map_or(0, Vec::len) as u64;
                if start.saturating_add(n as u64) > total {
                    return Err(MasterError::InvalidParameter(
                        "track read past the end".into(),
                    ));
                }
                let start = start as usize;
                block.resize_with(planes.len(), Vec::new);
                for (dst, src) in block.iter_mut().zip(planes.iter()) {
                    dst.clear();
                    dst.extend_from_slice(&src[start..start + n]);
                }
                Ok(())
            }
        }
    }

    /// A reader from the first frame, in blocks of `block_frames` (ends writing).
    pub fn reader(&mut self, block_frames: usize) -> Result<TrackReader<'_>, MasterError> {
        match self {
            TrackStore::Memory { planes, .. } => Ok(TrackReader::Memory {
                planes,
                pos: 0,
                block_frames: block_frames.max(1),
            }),
            TrackStore::Disk(spill) => Ok(TrackReader::Disk(spill.reader(block_frames)?)),
        }
    }
}

/// Copies a memory track into `spill` and frees it.
fn migrate(planes: &mut [Vec<f32>], spill: &mut SpillBuffer) -> Result<(), MasterError> {
    let frames = planes.first().map_or(0, Vec::len);
    let mut block: Vec<Vec<f32>> = vec![Vec::new(); planes.len()];
    for start in (0..frames).step_by(MIGRATE_FRAMES) {
        let end = (start + MIGRATE_FRAMES).min(frames);
        for (dst, src) in block.iter_mut().zip(planes.iter()) {
            dst.clear();
            dst.extend_from_slice(&src[start..end]);
        }
        spill.write(&block)?;
    }
    for plane in planes.iter_mut() {
        *plane = Vec::new();
    }
    Ok(())
}

/// Reads a [`TrackStore`] back in planar blocks.
#[derive(Debug)]
pub enum TrackReader<'a> {
    Memory {
        planes: &'a [Vec<f32>],
        pos: usize,
        block_frames: usize,
    },
    Disk(SpillReader<'a>),
}

impl TrackReader<'_> {
    /// Fills `block` with up to the reader's block length; returns the frames (0 at the end).
    pub fn read_block(&mut self, block: &mut Vec<Vec<f32>>) -> Result<usize, MasterError> {
        match self {
            TrackReader::Disk(reader) => reader.read_block(block),
            TrackReader::Memory {
                planes,
                pos,
                block_frames,
            } => {
                let total = planes.first().map_or(0, Vec::len);
                let n = (*block_frames).min(total - *pos);
                block.resize_with(planes.len(), Vec::new);
                for (dst, src) in block.iter_mut().zip(planes.iter()) {
                    dst.clear();
                    dst.extend_from_slice(&src[*pos..*pos + n]);
                }
                *pos += n;
                Ok(n)
            }
        }
    }
}

/// A pass that reads a track and writes its processed version, which replaces it: in
/// place for a memory track (the output never runs ahead of the input: a pipeline's output
/// lags its input by its latency), into a second spill file for a disk track.
pub enum Rewrite<'a> {
    Memory {
        planes: &'a mut Vec<Vec<f32>>,
        read: usize,
        write: usize,
        block_frames: usize,
    },
    Disk {
        reader: SpillReader<'a>,
        out: SpillBuffer,
    },
}

impl TrackStore {
    /// Starts rewriting the track in blocks of `block_frames`; `dir` holds the new spill
    /// file of a disk track. Finish with [`Rewrite::finish`].
    pub fn rewrite(&mut self, dir: &Path, block_frames: usize) -> Result<Rewrite<'_>, MasterError> {
        match self {
            TrackStore::Memory { planes, .. } => Ok(Rewrite::Memory {
                planes,
                read: 0,
                write: 0,
                block_frames: block_frames.max(1),
            }),
            TrackStore::Disk(spill) => {
                let channels = spill.channels();
                Ok(Rewrite::Disk {
                    reader: spill.reader(block_frames)?,
                    out: SpillBuffer::new_in(dir, channels)?,
                })
            }
        }
    }
}

impl Rewrite<'_> {
    /// The next input block; returns its frames (0 at the end).
    pub fn read_block(&mut self, block: &mut Vec<Vec<f32>>) -> Result<usize, MasterError> {
        match self {
            Rewrite::Disk { reader, .. } => reader.read_block(block),
            Rewrite::Memory {
                planes,
                read,
                block_frames,
                ..
            } => {
                let total = planes.first().map_or(0, Vec::len);
                let n = (*block_frames).min(total - *read);
                block.resize_with(planes.len(), Vec::new);
                for (dst, src) in block.iter_mut().zip(planes.iter()) {
                    dst.clear();
                    dst.extend_from_slice(&src[*read..*read + n]);
                }
                *read += n;
                Ok(n)
            }
        }
    }

    /// Appends one processed block.
    pub fn write(&mut self, block: &[Vec<f32>]) -> Result<(), MasterError> {
        match self {
            Rewrite::Disk { out, .. } => out.write(block),
            Rewrite::Memory {
                planes,
                read,
                write,
                ..
            } => {
                let n = block.first().map_or(0, Vec::len);
                let total = planes.first().map_or(0, Vec::len);
                // Output may pass the read position only once the input is used up (a
                // pipeline's flush); never past the end.
                if block.len() != planes.len()
                    || block.iter().any(|p| p.len() != n)
                    || *write + n > total
                    || (*write + n > *read && *read < total)
                {
                    return Err(MasterError::InvalidParameter(
                        "rewritten block does not fit the track".into(),
                    ));
                }
                for (dst, src) in planes.iter_mut().zip(block) {
                    dst[*write..*write + n].copy_from_slice(src);
                }
                *write += n;
                Ok(())
            }
        }
    }

    /// Ends the pass: the processed track replaces the input in `store`. Fails when the
    /// output is not exactly as long as the input.
    pub fn finish(self) -> Result<Option<SpillBuffer>, MasterError> {
        match self {
            Rewrite::Memory { planes, write, .. } => {
                if write != planes.first().map_or(0, Vec::len) {
                    return Err(MasterError::InvalidParameter(
                        "rewrite ended short of the track".into(),
                    ));
                }
                Ok(None)
            }
            Rewrite::Disk { out, .. } => Ok(Some(out)),
        }
    }
}
