//! The limiter's peak detector: per frame, the largest magnitude over all channels of the
//! band-limited signal around it, read by the exact true-peak detector the meter also uses
//! ([`ExactPeak`]: 4× grid from two half-band stages, a 96-tap and a 10-tap Kaiser-windowed
//! sinc, flat to 0.95 of Nyquist, refined by parabolas), and never less than ebur128's
//! (ffmpeg's) own 4× reading of the same frame ([`Ebur128Style`]), which can read higher.
//! Tiles that provably stay under the threshold are skipped.

use super::CHUNK;
use super::ebur128_style::Ebur128Style;
use crate::dsp::DspError;
use crate::meter::true_peak::{CONTEXT, ExactPeak, ScanScratch, TILE, WINDOW};

/// Streaming per-frame peak detector over chunks of at most [`CHUNK`] frames.
#[derive(Debug, Clone)]
pub(crate) struct PeakDetector {
    channels: usize,
    exact: ExactPeak,
    /// The users' meter's reading, which can pass the exact one (see [`Ebur128Style`]).
    ebur128: Ebur128Style,
    /// Per channel: the last `CONTEXT` input samples followed by the current chunk (and room
    /// for the last tile's window).
    history: Vec<Vec<f32>>,
    scratch: ScanScratch,
}

impl PeakDetector {
    pub(crate) fn new(sample_rate: u32, channels: usize) -> Result<Self, DspError> {
        if channels == 0 {
            return Err(DspError::Parameter("no channels".into()));
        }
        Ok(PeakDetector {
            channels,
            exact: ExactPeak::new(),
            ebur128: Ebur128Style::new(sample_rate)?,
            history: vec![vec![0.0; CONTEXT + CHUNK.next_multiple_of(TILE) + WINDOW]; channels],
            scratch: ScanScratch::default(),
        })
    }

    /// Frames of input the detector looks back over (its support minus one): a peak
    /// reported for frame `i` depends on frames `i - support() ..= i`.
    pub(crate) fn support(&self) -> usize {
        CONTEXT
    }

    pub(crate) fn reset(&mut self) {
        for h in &mut self.history {
            h.fill(0.0);
        }
    }

    /// Writes into `peak[..n]` the per-frame peaks of `n ≤ CHUNK` frames starting at
    /// `offset` in `block`. Frames whose peaks cannot reach `report_above` may be reported
    /// lower than their true value (but never above `report_above`); every frame whose peak
    /// reaches it is reported exactly.
    pub(crate) fn detect(
        &mut self,
        block: &[Vec<f32>],
        offset: usize,
        n: usize,
        peak: &mut [f32],
        report_above: f32,
    ) {
        peak[..n].fill(0.0);
        for (ch, samples) in block.iter().enumerate().take(self.channels) {
            let hist = &mut self.history[ch];
            hist[CONTEXT..CONTEXT + n].copy_from_slice(&samples[offset..offset + n]);
            self.exact
                .scan(hist, n, peak, report_above, false, &mut self.scratch);
            // Frame i's sample is hist[i + CONTEXT / 2] for both readings.
            let start = CONTEXT / 2 - self.ebur128.lead();
            self.ebur128.raise(&hist[start..], n, peak, report_above);
            hist.copy_within(n..n + CONTEXT, 0);
        }
    }

    /// [`Self::detect`], and an upper bound of what it skips: `peak[..n]` gets, per frame,
    /// the largest reading it interpolated (over channels and both readings), `bound[..n]`
    /// the largest upper bound of the readings it skipped (0 where none), which stays
    /// under `report_above`. A frame's reading is at most the larger of both, and exactly
    /// `peak` where `peak ≥ bound`. The readings are [`Self::detect`]'s, bit for bit.
    pub(crate) fn detect_bounded(
        &mut self,
        block: &[Vec<f32>],
        (offset, n): (usize, usize),
        (peak, bound): (&mut [f32], &mut [f32]),
        report_above: f32,
    ) {
        peak[..n].fill(0.0);
        bound[..n].fill(0.0);
        for (ch, samples) in block.iter().enumerate().take(self.channels) {
            let hist = &mut self.history[ch];
            hist[CONTEXT..CONTEXT + n].copy_from_slice(&samples[offset..offset + n]);
            self.exact
                .scan(hist, n, peak, report_above, false, &mut self.scratch);
            for (t, &b) in self.scratch.tile_bounds().iter().enumerate() {
                if b < report_above {
                    let end = (TILE * (t + 1)).min(n);
                    for v in bound.iter_mut().take(end).skip(TILE * t) {
                        *v = v.max(b);
                    }
                }
            }
            let start = CONTEXT / 2 - self.ebur128.lead();
            self.ebur128
                .raise_bounded(&hist[start..], n, (peak, bound), report_above);
            hist.copy_within(n..n + CONTEXT, 0);
        }
    }

    /// Sets the history to the frames before the next block: the last [`CONTEXT`] of
    /// `before[..][..upto]` (zeros in front when fewer), as if they had been detected.
    pub(crate) fn start_after(&mut self, before: &[Vec<f32>], upto: usize) {
        for (hist, plane) in self.history.iter_mut().zip(before) {
            let k = upto.min(CONTEXT);
            hist[..CONTEXT - k].fill(0.0);
            hist[CONTEXT - k..CONTEXT].copy_from_slice(&plane[upto - k..upto]);
        }
    }
}
