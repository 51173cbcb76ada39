//! A pipeline of [`BlockProcessor`]s with latency compensation and per-stage timing.

use crate::stage::BlockProcessor;
use std::time::{Duration, Instant};

/// A named stage of a pipeline.
pub struct NamedStage {
    pub name: &'static str,
    pub processor: Box<dyn BlockProcessor>,
}

impl NamedStage {
    /// Wraps a processor under `name` (used in timings).
    pub fn new(name: &'static str, processor: Box<dyn BlockProcessor>) -> NamedStage {
        NamedStage { name, processor }
    }
}

/// Runs blocks through stages in order. The summed latency of the stages is compensated:
/// [`Pipeline::process`] drops that many frames from the start of the output and
/// [`Pipeline::flush`] feeds as many frames of silence after the input, so the output has
/// exactly as many frames as the input and lines up with it.
pub struct Pipeline {
    stages: Vec<NamedStage>,
    times: Vec<Duration>,
    latency: usize,
    to_skip: usize,
    flushed: bool,
}

impl Pipeline {
    /// A pipeline of `stages` (may be empty).
    pub fn new(stages: Vec<NamedStage>) -> Pipeline {
        let latency = stages.iter().map(|s| s.processor.latency()).sum();
        Pipeline {
            times: vec![Duration::ZERO; stages.len()],
            stages,
            latency,
            to_skip: latency,
            flushed: false,
        }
    }

    /// True when there are no stages (the pipeline passes blocks through).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Total latency of the stages, frames.
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// Processes `block` in place; afterwards it holds the aligned output, which may be
    /// shorter than the input (or empty) while the latency is being absorbed.
    pub fn process(&mut self, block: &mut [Vec<f32>]) -> usize {
        for (stage, time) in self.stages.iter_mut().zip(&mut self.times) {
            let t = Instant::now();
            stage.processor.process(block);
            *time += t.elapsed();
        }
        let n = block.first().map_or(0, Vec::len);
        let skip = self.to_skip.min(n);
        if skip > 0 {
            for plane in block.iter_mut() {
                plane.drain(..skip);
            }
            self.to_skip -= skip;
        }
        n - skip
    }

    /// Pushes the remaining latency out with silence, calling `sink` with each aligned
    /// output block. Call once after the last input block.
    pub fn flush<E>(
        &mut self,
        channels: usize,
        block_frames: usize,
        mut sink: impl FnMut(&[Vec<f32>]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.flushed {
            return Ok(());
        }
        self.flushed = true;
        let mut left = self.latency;
        let mut block = vec![Vec::with_capacity(block_frames); channels];
        while left > 0 {
            let n = left.min(block_frames.max(1));
            for plane in block.iter_mut() {
                plane.clear();
                plane.resize(n, 0.0);
            }
            if self.process(&mut block) > 0 {
                sink(&block)?;
            }
            left -= n;
        }
        Ok(())
    }

    /// Resets every stage and the latency bookkeeping, for another pass over the signal.
    pub fn reset(&mut self) {
        for stage in &mut self.stages {
            stage.processor.reset();
        }
        self.to_skip = self.latency;
        self.flushed = false;
    }

    /// Seconds spent in all stages so far.
    pub fn total_seconds(&self) -> f64 {
        self.times.iter().map(Duration::as_secs_f64).sum()
    }

    /// Seconds spent in each stage so far.
    pub fn timings(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.stages
            .iter()
            .zip(&self.times)
            .map(|(s, t)| (s.name, t.as_secs_f64()))
    }
}
