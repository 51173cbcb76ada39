//! Long-term average spectrum (Welch's method) reported in octave bands.

use crate::report::SpectrumBand;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Nominal centres of the reported octave bands, Hz (exact centres are 1 kHz · 2^k).
pub const OCTAVE_CENTRES_HZ: [f64; 10] = [
    31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0,
];

/// Streaming Welch estimate of the power spectrum: Hann-windowed segments of `fft_len`
/// samples with 50 % overlap, power averaged over segments and channels.
///
/// `fft_len` is the power of two nearest above `rate / 6` (8192 at 44.1/48 kHz: 5.4 Hz
/// bins, four of them inside the 31.5 Hz octave). A track shorter than one segment is
/// analysed as one zero-padded segment.
pub struct SpectrumAnalyzer {
    fft: Arc<dyn RealToComplex<f32>>,
    fft_len: usize,
    rate: u32,
    window: Vec<f32>,
    /// Per channel: samples waiting for a full segment.
    pending: Vec<Vec<f32>>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f64>,
    segments: u64,
}

impl std::fmt::Debug for SpectrumAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpectrumAnalyzer")
            .field("fft_len", &self.fft_len)
            .field("rate", &self.rate)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

impl SpectrumAnalyzer {
    /// An analyser for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32) -> SpectrumAnalyzer {
        let fft_len = (rate as usize / 6).next_power_of_two().max(256);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(fft_len);
        let window = (0..fft_len)
            .map(|n| {
                let x = std::f64::consts::PI * 2.0 * n as f64 / fft_len as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        SpectrumAnalyzer {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            fft_len,
            rate,
            window,
            pending: vec![Vec::with_capacity(fft_len); channels],
            power: vec![0.0; fft_len / 2 + 1],
            segments: 0,
        }
    }

    /// Segment length, samples.
    pub fn fft_len(&self) -> usize {
        self.fft_len
    }

    /// Adds one planar block.
    pub fn add_block<S: AsRef<[f32]>>(&mut self, block: &[S]) {
        let hop = self.fft_len / 2;
        for (ch, plane) in block.iter().enumerate().take(self.pending.len()) {
            let mut src = plane.as_ref();
            while !src.is_empty() {
                let room = self.fft_len - self.pending[ch].len();
                let take = room.min(src.len());
                self.pending[ch].extend_from_slice(&src[..take]);
                src = &src[take..];
                if self.pending[ch].len() == self.fft_len {
                    self.analyse_segment(ch, self.fft_len);
                    self.pending[ch].drain(..hop);
                }
            }
        }
    }

    fn analyse_segment(&mut self, ch: usize, len: usize) {
        let seg = &self.pending[ch];
        for (i, x) in self.input.iter_mut().enumerate() {
            *x = if i < len {
                seg[i] * self.window[i]
            } else {
                0.0
            };
        }
        // Lengths come from the plan itself, so this cannot fail.
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_ok()
        {
            for (p, c) in self.power.iter_mut().zip(&self.output) {
                *p += f64::from(c.norm_sqr());
            }
            if ch == 0 {
                self.segments += 1;
            }
        }
    }

    /// Average power per FFT bin (arbitrary but consistent scale), bin `k` at `k·rate/len`.
    pub fn power_spectrum(&mut self) -> &[f64] {
        if self.segments == 0 {
            // Shorter than one segment: analyse what there is, zero-padded.
            for ch in 0..self.pending.len() {
                let len = self.pending[ch].len();
                if len > 0 {
                    self.analyse_segment(ch, len);
                }
            }
        }
        &self.power
    }

    /// Power summed over each octave band (edges at centre/√2 and centre·√2, upper edge cut
    /// at Nyquist; bands starting above Nyquist are omitted), in dB relative to the 1 kHz
    /// band. A signal without energy reads 0 dB everywhere.
    pub fn octave_bands(&mut self) -> Vec<SpectrumBand> {
        let rate = f64::from(self.rate);
        let len = self.fft_len as f64;
        let nyquist = rate / 2.0;
        let power = self.power_spectrum().to_vec();
        let band_power = |k: i32| -> Option<f64> {
            let centre = 1000.0 * 2f64.powi(k);
            let lo = centre / 2f64.sqrt();
            let hi = (centre * 2f64.sqrt()).min(nyquist);
            if lo >= nyquist {
                return None;
            }
            let first = (lo * len / rate).ceil() as usize;
            let last = ((hi * len / rate).floor() as usize).min(power.len() - 1);
            Some(power[first.min(last)..=last].iter().sum())
        };
        const TINY: f64 = 1e-30;
        let reference = band_power(0).unwrap_or(0.0) + TINY;
        (-5..=4)
            .zip(OCTAVE_CENTRES_HZ)
            .filter_map(|(k, hz)| {
                let p = band_power(k)? + TINY;
                Some(SpectrumBand {
                    hz,
                    db: 10.0 * (p / reference).log10(),
                })
            })
            .collect()
    }
}
