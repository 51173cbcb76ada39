//! Plumbing shared by the chains: progress and cancellation, stage timing, measuring passes.

use crate::decode::{DecodeStats, Decoder};
use crate::encode::Monitored;
use crate::error::MasterError;
use crate::meter::{FastMeter, MeterMode};
use crate::progress::{Progress, Stage};
use crate::report::{AudioInfo, Loudness};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Shortest input the chain masters, seconds: gated integrated loudness needs one 400 ms
/// block, so a 0.5 s clip has a loudness to bring to a target (docs/QUALITY.md §2).
pub const MIN_DURATION_SEC: f64 = 0.5;
/// Inputs quieter than this integrated loudness are treated as silent, LUFS.
pub const SILENCE_LUFS: f64 = -70.0;

/// Reports progress (throttled to steps of 1 %, never decreasing), checks the cancel flag,
/// times stages.
pub struct Reporter<'a> {
    on_progress: &'a mut dyn FnMut(Progress),
    cancel: &'a AtomicBool,
    stage: Stage,
    label: String,
    started: Instant,
    last_sent: f32,
    timings: Vec<(String, f64)>,
    /// Seconds of the current stage already reported under other labels.
    inner: f64,
}

impl<'a> Reporter<'a> {
    pub fn new(on_progress: &'a mut dyn FnMut(Progress), cancel: &'a AtomicBool) -> Self {
        Reporter {
            on_progress,
            cancel,
            stage: Stage::Decode,
            label: String::new(),
            started: Instant::now(),
            last_sent: -1.0,
            timings: Vec::new(),
            inner: 0.0,
        }
    }

    /// Starts a stage (closing the timing of the previous one) and reports it.
    /// `label` names the timing entry (several entries may share a user-facing stage).
    pub fn begin(&mut self, stage: Stage, label: &str, fraction: f32) -> Result<(), MasterError> {
        self.close_timing();
        self.stage = stage;
        self.label = label.to_string();
        self.started = Instant::now();
        self.send(fraction, true)
    }

    /// Reports progress inside the current stage and checks for cancellation.
    pub fn advance(&mut self, fraction: f32) -> Result<(), MasterError> {
        self.send(fraction, false)
    }

    fn send(&mut self, fraction: f32, force: bool) -> Result<(), MasterError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(MasterError::Cancelled);
        }
        // Never backwards: a corrective pass after the output was measured stays put.
        let fraction = fraction.clamp(0.0, 1.0).max(self.last_sent);
        if force || fraction - self.last_sent >= 0.01 {
            self.last_sent = fraction;
            (self.on_progress)(Progress {
                stage: self.stage,
                fraction,
            });
        }
        Ok(())
    }

    fn close_timing(&mut self) {
        let inner = std::mem::take(&mut self.inner);
        if !self.label.is_empty() {
            let secs = (self.started.elapsed().as_secs_f64() - inner).max(0.0);
            match self.timings.iter_mut().find(|(l, _)| *l == self.label) {
                Some((_, t)) => *t += secs,
                None => self.timings.push((std::mem::take(&mut self.label), secs)),
            }
            self.label.clear();
        }
    }

    /// Adds `secs`, spent inside the current stage, to the timing entry `label` instead of
    /// the current stage's (for stages timed by a pipeline): the entries stay exclusive and
    /// add up to the total.
    pub fn add_inner(&mut self, label: &str, secs: f64) {
        self.inner += secs;
        self.add_timing(label, secs);
    }

    /// Adds `secs` to the timing entry `label`.
    pub fn add_timing(&mut self, label: &str, secs: f64) {
        match self.timings.iter_mut().find(|(l, _)| l == label) {
            Some((_, t)) => *t += secs,
            None => self.timings.push((label.to_string(), secs)),
        }
    }

    /// Closes the last stage and returns the seconds spent per stage label.
    pub fn finish(mut self) -> Vec<(String, f64)> {
        self.close_timing();
        (self.on_progress)(Progress {
            stage: self.stage,
            fraction: 1.0,
        });
        self.timings
    }
}

/// Maps frames done to overall progress within `[start, end]`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: f32,
    pub end: f32,
    pub total_frames: u64,
}

impl Span {
    pub fn at(&self, frames_done: u64) -> f32 {
        let part = if self.total_frames == 0 {
            0.0
        } else {
            (frames_done as f64 / self.total_frames as f64).min(1.0) as f32
        };
        self.start + (self.end - self.start) * part
    }
}

/// The result of measuring a whole file.
#[derive(Debug, Clone)]
pub struct Measured {
    pub info: AudioInfo,
    pub loudness: Loudness,
    pub frames: u64,
    pub stats: DecodeStats,
}

impl Measured {
    /// Duration in seconds (from the decoded frames, not the header).
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.info.sample_rate)
    }
}

/// Expected frames of a file from its header (0 when unknown).
pub fn expected_frames(info: &AudioInfo) -> u64 {
    info.duration_sec
        .map_or(0, |d| (d * f64::from(info.sample_rate)).round() as u64)
}

/// Decodes `path` once and measures it with the chain's [`FastMeter`], reporting progress between `start` and `end`.
pub fn measure_file(
    path: &Path,
    mode: MeterMode,
    rep: &mut Reporter<'_>,
    start: f32,
    end: f32,
) -> Result<Measured, MasterError> {
    let mut decoder = Decoder::open(path)?;
    let info = decoder.info().clone();
    let mut meter = FastMeter::new(decoder.channels(), decoder.sample_rate(), mode)?;
    let span = Span {
        start,
        end,
        total_frames: expected_frames(&info),
    };
    let mut block = Vec::new();
    let mut frames = 0u64;
    loop {
        let n = decoder.read_block(&mut block)?;
        if n == 0 {
            break;
        }
        meter.add_block(&block)?;
        frames += n as u64;
        rep.advance(span.at(frames))?;
    }
    Ok(Measured {
        info,
        loudness: meter.loudness(),
        frames,
        stats: decoder.stats(),
    })
}

/// The measurement of a losslessly encoded `path` from what its encoder metered while
/// writing it (the samples a decoder reads back, bit for bit). The header is read back
/// for the format facts, and its length must match what was metered.
pub fn measured_from_monitor(path: &Path, monitored: Monitored) -> Result<Measured, MasterError> {
    let decoder = Decoder::open(path)?;
    let info = decoder.info().clone();
    let in_header = expected_frames(&info);
    if in_header != monitored.frames {
        return Err(MasterError::Encode(format!(
            "the written file announces {in_header} frames, {} were encoded",
            monitored.frames
        )));
    }
    Ok(Measured {
        info,
        loudness: monitored.meter.loudness(),
        frames: monitored.frames,
        stats: DecodeStats {
            frames: monitored.frames,
            ..DecodeStats::default()
        },
    })
}

/// Proves before queueing that `path` is audio the chain will take: it decodes (see
/// [`crate::decode::probe`]), it lasts at least [`MIN_DURATION_SEC`] ([`MasterError::TooShort`])
/// and its header declares no more than `max_duration_sec` ([`MasterError::TooLong`]; a
/// stream without a declared length is held to the limit while it is mastered). Decodes the
/// first block and the last seconds only, or up to [`MIN_DURATION_SEC`] of a stream without
/// a declared length.
pub fn probe_masterable(path: &Path, max_duration_sec: f64) -> Result<AudioInfo, MasterError> {
    let mut decoder = Decoder::open(path)?;
    decoder.limit_duration(max_duration_sec)?;
    let mut block = Vec::new();
    decoder.read_block(&mut block)?;
    decoder.check_reaches_declared_end()?;
    let rate = f64::from(decoder.sample_rate());
    let min_frames = (MIN_DURATION_SEC * rate).ceil() as u64;
    while decoder.stats().frames < min_frames && decoder.read_block(&mut block)? > 0 {}
    let frames = decoder.stats().frames;
    if frames < min_frames {
        return Err(too_short(frames as f64 / rate));
    }
    Ok(decoder.info().clone())
}

fn too_short(secs: f64) -> MasterError {
    MasterError::TooShort(format!(
        "{secs:.2} s of audio; at least {MIN_DURATION_SEC} s are needed to measure loudness"
    ))
}

/// Refuses inputs that are too short or too quiet to be brought to a loudness target.
pub fn check_masterable(input: &Measured) -> Result<(), MasterError> {
    let secs = input.seconds();
    if secs < MIN_DURATION_SEC {
        return Err(too_short(secs));
    }
    let max = crate::dsp::dynamics::MAX_INPUT_LUFS;
    if input.loudness.lufs > max {
        return Err(MasterError::Corrupt(format!(
            "integrated loudness is {:.0} LUFS (above {max} LUFS): the sample values are not \
             audio",
            input.loudness.lufs
        )));
    }
    if input.loudness.lufs < SILENCE_LUFS {
        return Err(MasterError::Silent(format!(
            "integrated loudness is {:.1} LUFS (below {SILENCE_LUFS} LUFS): there is nothing \
             to bring to a loudness target",
            input.loudness.lufs
        )));
    }
    Ok(())
}

/// Applies a linear gain to every sample of a planar block.
pub fn apply_gain(block: &mut [Vec<f32>], gain: f32) {
    for plane in block {
        for s in plane.iter_mut() {
            *s *= gain;
        }
    }
}

/// dB to linear amplitude.
pub fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}
