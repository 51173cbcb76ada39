//! Long-term octave-band spectrum and per-band stereo statistics, as the EQ needs them.
//!
//! [`OctaveAnalyzer`] is fed the track block by block (it only reads) and averages Hann-
//! windowed FFT frames (back to back, about 6 Hz resolution at any rate: a 3-minute track
//! gives about 950 frames, plenty for a long-term average, so overlap would only double the
//! work). It reports:
//!
//! - [`OctaveAnalyzer::spectrum_db`]: octave-band **power** (all channels summed) at
//!   [`BAND_CENTRES_HZ`], in dB relative to the 1 kHz band — the convention of the style
//!   target curves (pink noise is flat). Bands at or above 0.45 × the sample rate are left
//!   out; empty bands read [`FLOOR_DB`].
//! - [`OctaveAnalyzer::band_stereo`]: for stereo, each band's left and right power and L·R
//!   cross-power, from which the EQ predicts how a correction would change the L/R
//!   correlation (and limits it, see [`super::eq::limit_for_correlation`]).
//!
//! It is the crate's only spectrum analyser: [`crate::analyze_file`] reports
//! [`OctaveAnalyzer::report_bands`] and the chain's analysis pass designs the EQ from the
//! same measurement, so the report and the EQ share one convention. `add` does not
//! allocate.

use super::styles::BAND_CENTRES_HZ;
use super::{DspError, check_format};
use crate::report::SpectrumBand;
use realfft::RealFftPlanner;
use realfft::RealToComplex;
use realfft::num_complex::Complex;
use std::sync::Arc;

/// Level reported for a band with no energy, dB re 1 kHz.
pub const FLOOR_DB: f64 = -150.0;

/// Running sums per band, in `f64`: item `i` of a band goes to sum `i mod 4`, and the four
/// are added as `(s0 + s1) + (s2 + s3)`. Whole groups of four are fixed-size arrays, so the
/// loop vectorises (measured on a 321.8 s stereo track, one core: the band sums of the
/// former per-item `lanes[i & 3]` loop cost about as much as the FFTs).
const SUM_LANES: usize = 4;

/// Σ `f(a[i], b[i])` over two equally long slices in `f64`, summed as described at
/// [`SUM_LANES`].
#[inline(always)]
fn sum_lanes<T: Copy>(a: &[T], b: &[T], f: impl Fn(T, T) -> f32) -> f64 {
    let mut lanes = [0.0f64; SUM_LANES];
    let (ca, cb) = (a.chunks_exact(SUM_LANES), b.chunks_exact(SUM_LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..SUM_LANES {
            lanes[j] += f64::from(f(x[j], y[j]));
        }
    }
    for (j, (&x, &y)) in ta.iter().zip(tb).enumerate() {
        lanes[j] += f64::from(f(x, y));
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// One octave band's stereo statistics (linear power, common arbitrary unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandStereo {
    /// Band centre, Hz.
    pub hz: f64,
    /// Power of the left channel in the band.
    pub left: f64,
    /// Power of the right channel in the band.
    pub right: f64,
    /// Real part of the L·R* cross-power in the band (the band's share of Σ L·R).
    pub cross: f64,
}

/// Streaming long-term octave-band analyser; see the module documentation.
pub struct OctaveAnalyzer {
    rate: f64,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per channel: the samples of the frame being filled.
    frames: Vec<Vec<f32>>,
    filled: usize,
    input: Vec<f32>,
    spectra: Vec<Vec<Complex<f32>>>,
    scratch: Vec<Complex<f32>>,
    /// FFT bins of each octave band (contiguous; empty above the usable range).
    band_bins: Vec<std::ops::Range<usize>>,
    power: Vec<[f64; 10]>,
    cross: [f64; 10],
    /// Frames analysed so far.
    analysed: u64,
}

impl std::fmt::Debug for OctaveAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctaveAnalyzer")
            .field("rate", &self.rate)
            .field("channels", &self.frames.len())
            .field("fft_len", &self.window.len())
            .finish()
    }
}

impl OctaveAnalyzer {
    /// Builds an analyser for `channels` channels at `sample_rate` Hz.
    pub fn new(sample_rate: u32, channels: usize) -> Result<Self, DspError> {
        check_format(sample_rate, channels)?;
        let n = (sample_rate as usize / 6).next_power_of_two();
        let rate = f64::from(sample_rate);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let window = (0..n)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32)
            .collect();
        // Bin k belongs to the first band whose [c/√2, c·√2) holds its frequency; the bands
        // are adjacent octaves, so each one's bins are a contiguous range.
        let band_of_bin: Vec<usize> = (0..=n / 2)
            .map(|k| {
                let hz = k as f64 * rate / n as f64;
                BAND_CENTRES_HZ
                    .iter()
                    .position(|&c| hz >= c / 2f64.sqrt() && hz < c * 2f64.sqrt())
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let band_bins = (0..BAND_CENTRES_HZ.len())
            .map(|b| {
                let start = band_of_bin.iter().position(|&x| x == b).unwrap_or(0);
                let len = band_of_bin[start..].iter().take_while(|&&x| x == b).count();
                start..start + len
            })
            .collect();
        Ok(OctaveAnalyzer {
            rate,
            input: fft.make_input_vec(),
            spectra: vec![fft.make_output_vec(); channels],
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            frames: vec![vec![0.0; n]; channels],
            filled: 0,
            band_bins,
            power: vec![[0.0; 10]; channels],
            cross: [0.0; 10],
            analysed: 0,
        })
    }

    /// Adds a planar block (any length) to the average.
    pub fn add(&mut self, block: &[Vec<f32>]) {
        let n = self.window.len();
        let channels = block.len().min(self.frames.len());
        let len = block[..channels].iter().map(Vec::len).min().unwrap_or(0);
        let mut offset = 0;
        while offset < len {
            let take = (n - self.filled).min(len - offset);
            for (frame, samples) in self.frames.iter_mut().zip(&block[..channels]) {
                frame[self.filled..self.filled + take]
                    .copy_from_slice(&samples[offset..offset + take]);
            }
            self.filled += take;
            offset += take;
            if self.filled == n {
                self.analyse_frame();
                self.filled = 0;
            }
        }
    }

    /// Ends the input. A track shorter than one FFT frame is analysed as one zero-padded
    /// frame (so a 0.1 s file still has a spectrum); otherwise the partial last frame is
    /// dropped, as in any Welch estimate.
    pub fn finish(&mut self) {
        if self.analysed == 0 && self.filled > 0 {
            for frame in &mut self.frames {
                frame[self.filled..].fill(0.0);
            }
            self.analyse_frame();
            self.filled = 0;
        }
    }

    fn analyse_frame(&mut self) {
        self.analysed += 1;
        for ((frame, spectrum), power) in self
            .frames
            .iter()
            .zip(&mut self.spectra)
            .zip(&mut self.power)
        {
            for ((dst, &x), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
                *dst = x * w;
            }
            let done = self
                .fft
                .process_with_scratch(&mut self.input, spectrum, &mut self.scratch);
            debug_assert!(done.is_ok(), "buffer lengths are fixed in new");
            for (p, bins) in power.iter_mut().zip(&self.band_bins) {
                let band = &spectrum[bins.clone()];
                *p += sum_lanes(band, band, |c, _| c.norm_sqr());
            }
        }
        if let [left, right] = self.spectra.as_slice() {
            for (c, bins) in self.cross.iter_mut().zip(&self.band_bins) {
                let (l, r) = (&left[bins.clone()], &right[bins.clone()]);
                *c += sum_lanes(l, r, |l, r| l.re * r.re + l.im * r.im);
            }
        }
    }

    /// Indices of the bands below 0.45 × the sample rate.
    fn usable_bands(&self) -> impl Iterator<Item = usize> + '_ {
        (0..BAND_CENTRES_HZ.len()).filter(|&b| BAND_CENTRES_HZ[b] < 0.45 * self.rate)
    }

    /// Octave-band power re the 1 kHz band, dB. Empty when nothing was analysed yet or
    /// the 1 kHz band is silent (no reference).
    pub fn spectrum_db(&self) -> Vec<(f64, f64)> {
        let total = |b: usize| self.power.iter().map(|p| p[b]).sum::<f64>();
        let reference = total(5);
        if reference <= 0.0 {
            return Vec::new();
        }
        self.usable_bands()
            .map(|b| {
                let p = total(b);
                let db = if p > 0.0 {
                    (10.0 * (p / reference).log10()).max(FLOOR_DB)
                } else {
                    FLOOR_DB
                };
                (BAND_CENTRES_HZ[b], db)
            })
            .collect()
    }

    /// The spectrum as the analysis report gives it: [`Self::spectrum_db`], or every usable
    /// band at 0 dB when there is no reference (silence).
    pub fn report_bands(&self) -> Vec<SpectrumBand> {
        let spectrum = self.spectrum_db();
        if spectrum.is_empty() {
            return self
                .usable_bands()
                .map(|b| SpectrumBand {
                    hz: BAND_CENTRES_HZ[b],
                    db: 0.0,
                })
                .collect();
        }
        spectrum
            .into_iter()
            .map(|(hz, db)| SpectrumBand { hz, db })
            .collect()
    }

    /// Per-band stereo statistics; empty unless the input is stereo.
    pub fn band_stereo(&self) -> Vec<BandStereo> {
        let [left, right] = self.power.as_slice() else {
            return Vec::new();
        };
        self.usable_bands()
            .map(|b| BandStereo {
                hz: BAND_CENTRES_HZ[b],
                left: left[b],
                right: right[b],
                cross: self.cross[b],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::{TestRng, sine};

    /// The chunked band sums add exactly as the per-item loop `lanes[i & 3] += …` did
    /// (same lane per item, same final order): bit-identical for every band length.
    #[test]
    fn band_sums_equal_the_per_item_lane_sums() {
        let mut rng = TestRng::new(11);
        let bins: Vec<Complex<f32>> = (0..1000)
            .map(|_| Complex::new(rng.bipolar() as f32 * 300.0, rng.bipolar() as f32 * 300.0))
            .collect();
        let other: Vec<Complex<f32>> = bins.iter().rev().copied().collect();
        let per_item = |values: &mut dyn Iterator<Item = f32>| {
            let mut lanes = [0.0f64; 4];
            for (i, v) in values.enumerate() {
                lanes[i & 3] += f64::from(v);
            }
            (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
        };
        for (start, len) in [(0, 0), (3, 1), (5, 7), (1, 64), (17, 515), (0, 1000)] {
            let (a, b) = (&bins[start..start + len], &other[start..start + len]);
            let power = sum_lanes(a, a, |c, _| c.norm_sqr());
            assert_eq!(power, per_item(&mut a.iter().map(|c| c.norm_sqr())));
            let cross = sum_lanes(a, b, |l, r| l.re * r.re + l.im * r.im);
            let expected = per_item(&mut a.iter().zip(b).map(|(l, r)| l.re * r.re + l.im * r.im));
            assert_eq!(cross, expected, "{start}+{len}");
        }
    }

    #[test]
    fn pink_like_and_white_noise_read_as_expected() {
        let rate = 44_100;
        let mut rng = TestRng::new(5);
        let white: Vec<f32> = (0..rate as usize * 10)
            .map(|_| rng.bipolar() as f32)
            .collect();
        let mut an = OctaveAnalyzer::new(rate, 1).unwrap();
        for chunk in white.chunks(3000) {
            an.add(&[chunk.to_vec()]);
        }
        let spec = an.spectrum_db();
        assert_eq!(spec.len(), 10);
        // White noise: octave-band power doubles per octave (+3.01 dB).
        for &(hz, db) in &spec[2..9] {
            let expected = 10.0 * (hz / 1000.0).log10();
            assert!(
                (db - expected).abs() < 0.3,
                "{hz} Hz: {db:.2} dB, expected {expected:.2}"
            );
        }
    }

    #[test]
    fn tone_lands_in_its_band_and_stereo_stats_match() {
        let rate = 48_000;
        let low = sine(250.0, 0.5, rate, rate as usize * 2);
        let ref_tone = sine(1000.0, 0.05, rate, rate as usize * 2);
        // L = low + ref, R = -0.5·low + ref.
        let a: Vec<f32> = low.iter().zip(&ref_tone).map(|(l, r)| l + r).collect();
        let b: Vec<f32> = low
            .iter()
            .zip(&ref_tone)
            .map(|(l, r)| r - 0.5 * l)
            .collect();
        let mut an = OctaveAnalyzer::new(rate, 2).unwrap();
        an.add(&[a, b]);
        let spec = an.spectrum_db();
        let band = |hz: f64| spec.iter().find(|s| s.0 == hz).map(|s| s.1).unwrap();
        // Power ratio of the 250 Hz band to the 1 kHz band: (0.5² + 0.25²) / (2 · 0.05²).
        let expected = 10.0 * (0.3125f64 / 0.005).log10();
        assert!(
            (band(250.0) - expected).abs() < 0.05,
            "{} vs {expected}",
            band(250.0)
        );
        assert!(band(4000.0) < -60.0, "{}", band(4000.0));
        let st = an.band_stereo();
        let b250 = st.iter().find(|s| s.hz == 250.0).unwrap();
        // R = -0.5 L: correlation -1, power ratio 1/4.
        assert!((b250.cross / (b250.left * b250.right).sqrt() + 1.0).abs() < 1e-3);
        assert!((b250.right / b250.left - 0.25).abs() < 1e-3);
        let mono = OctaveAnalyzer::new(rate, 1).unwrap();
        assert!(mono.band_stereo().is_empty());
        assert!(mono.spectrum_db().is_empty(), "nothing analysed yet");
    }
}
