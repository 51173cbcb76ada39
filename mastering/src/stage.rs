//! The block-processing contract every streaming DSP stage follows.
//!
//! Audio flows through the chain as planar blocks: one `Vec<f32>` per channel, all of the
//! same length (a block may be shorter than the stage's preferred size at the end of the
//! track). Stages are built (and allocate) in `new`, and `process` does not allocate.

/// A streaming, in-place DSP stage.
pub trait BlockProcessor: Send {
    /// Processes one planar block in place. `block[ch].len()` is equal for every channel.
    fn process(&mut self, block: &mut [Vec<f32>]);

    /// Delay in samples the stage adds (look-ahead, linear-phase FIR). The chain feeds
    /// this many samples of silence after the end of the input and drops the same number
    /// from the start of the output, so the output lines up with the input.
    fn latency(&self) -> usize {
        0
    }

    /// Clears all internal state, as if newly built.
    fn reset(&mut self);
}
