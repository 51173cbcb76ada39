//! Tonal-balance EQ: a smoothed, bounded correction toward a style's target curve, applied
//! as a linear-phase FIR by FFT convolution (overlap-save, `realfft`).
//!
//! # Design ([`design_correction`])
//!
//! For each measured octave band (level re 1 kHz, band power), the raw correction is
//! `target − measured`. Bands that are essentially empty (below [`EMPTY_BAND_DB`]) may be
//! cut but are never boosted (boosting them would only raise noise), and bands with a
//! non-finite level get no correction. The raw corrections are smoothed across neighbouring
//! bands (weights ¼, ½, ¼), shifted so that the correction at 1 kHz is 0 dB (the curves are
//! relative to 1 kHz; overall level is the loudness stage's job), scaled by the style's
//! correction amount (0..1, a partial correction) and clamped to ±`max_db` (at most
//! [`MAX_CORRECTION_DB`]). [`limit_for_correlation`] then scales the whole correction down
//! if it would change the L/R correlation by more than [`MAX_CORRELATION_CHANGE`].
//!
//! # Filter ([`LinearPhaseEq`])
//!
//! The band gains are joined into a continuous curve by cosine interpolation in log
//! frequency (flat at each band centre, so the gain *at* a centre is the band's gain). Below
//! the lowest band, cuts are held and boosts fade out over an octave; above the highest
//! band, the gain is held up to Nyquist. The zero-phase response is sampled on the FFT grid,
//! transformed to an impulse response, centred, made exactly symmetric and Hann-windowed to
//! `2·H − 1` taps, where `H` is the power of two nearest above `fs / 25` (2048 taps of
//! half-length at 44.1/48 kHz, ≈ 21 Hz resolution). A symmetric FIR is linear-phase: every
//! frequency is delayed by exactly `H − 1` samples, the stage's latency.
//!
//! The gain at a band centre is not what the band receives: an octave band averages the
//! curve over its whole width, and the FIR smooths the curve (≈ 21 Hz resolution, much of
//! an octave at 62.5 Hz). So the finished filter is measured — its octave-band power gains,
//! weighted as white, pink and brown programme — and where a band passes
//! [`REALISED_BAND_LIMIT_DB`], absolute or relative to the realised 1 kHz band, its centre
//! gain is pulled back and the filter designed again.
//!
//! # Convolution
//!
//! Overlap-save with an FFT of `8·2H` points. Each call to `process` is filtered
//! immediately: its samples (in pieces of at most [`LinearPhaseEq::preferred_block_len`])
//! are appended to the last `2H − 2` input samples, so the output never lags more than the
//! FIR's own delay, whatever the block length. Blocks of `preferred_block_len` frames are the
//! most efficient. `process` does not allocate: all buffers and FFT scratch are made in
//! `new`.

use super::spectrum::BandStereo;
use super::styles::BAND_CENTRES_HZ;
use super::{DspError, check_format};
use crate::stage::BlockProcessor;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use std::f64::consts::PI;
use std::sync::Arc;

/// Largest correction in any band, dB (docs/QUALITY.md: never more than ±6 dB).
pub const MAX_CORRECTION_DB: f64 = 6.0;

/// Bands measured this far below the 1 kHz band are treated as empty: never boosted.
pub const EMPTY_BAND_DB: f64 = -50.0;

/// Interpolates a curve of `(hz, db)` points (sorted by hz) at `hz`: linear in log
/// frequency, held flat beyond the ends. Returns 0 for an empty curve.
pub fn interpolate_curve(curve: &[(f64, f64)], hz: f64) -> f64 {
    let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
        return 0.0;
    };
    if hz <= first.0 {
        return first.1;
    }
    if hz >= last.0 {
        return last.1;
    }
    for pair in curve.windows(2) {
        let ((f0, g0), (f1, g1)) = (pair[0], pair[1]);
        if hz <= f1 {
            let t = (hz / f0).log2() / (f1 / f0).log2();
            return g0 + (g1 - g0) * t;
        }
    }
    last.1
}

/// Designs the per-band correction (dB) that moves `measured` toward `target`.
///
/// `measured` and `target` are `(centre Hz, dB re 1 kHz)` lists; `amount` (0..=1) is the
/// fraction of the difference corrected; `max_db` (0..=[`MAX_CORRECTION_DB`]) bounds every
/// band. Returns `(centre Hz, gain dB)` for the usable measured bands, sorted by frequency.
pub fn design_correction(
    measured: &[(f64, f64)],
    target: &[(f64, f64)],
    amount: f64,
    max_db: f64,
) -> Result<Vec<(f64, f64)>, DspError> {
    super::check_range("EQ correction amount", amount, 0.0, 1.0)?;
    super::check_range("EQ max correction", max_db, 0.0, MAX_CORRECTION_DB)?;
    let mut target: Vec<(f64, f64)> = target
        .iter()
        .copied()
        .filter(|(hz, db)| hz.is_finite() && *hz > 0.0 && db.is_finite())
        .collect();
    target.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut bands: Vec<(f64, f64)> = measured
        .iter()
        .copied()
        .filter(|(hz, _)| hz.is_finite() && *hz > 0.0)
        .collect();
    bands.sort_by(|a, b| a.0.total_cmp(&b.0));

    let raw: Vec<f64> = bands
        .iter()
        .map(|&(hz, db)| {
            if !db.is_finite() || target.is_empty() {
                return 0.0;
            }
            let diff = interpolate_curve(&target, hz) - db;
            if db < EMPTY_BAND_DB {
                diff.min(0.0)
            } else {
                diff
            }
        })
        .collect();
    let smoothed: Vec<(f64, f64)> = (0..raw.len())
        .map(|i| {
            let prev = raw[i.saturating_sub(1)];
            let next = raw[(i + 1).min(raw.len() - 1)];
            (bands[i].0, 0.25 * prev + 0.5 * raw[i] + 0.25 * next)
        })
        .collect();
    // Keep 1 kHz where it is: curves are relative to it, and the loudness stage sets the
    // overall level anyway.
    let anchor = interpolate_curve(&smoothed, 1000.0);
    Ok(smoothed
        .iter()
        .map(|&(hz, g)| (hz, ((g - anchor) * amount).clamp(-max_db, max_db)))
        .collect())
}

/// Largest L/R correlation change the EQ may cause, as predicted from per-band stereo
/// statistics (docs/QUALITY.md allows 0.05 for the whole chain; 0.01 is left for the rest).
pub const MAX_CORRELATION_CHANGE: f64 = 0.04;

/// Predicted L/R correlation after applying `correction` scaled by `scale`.
fn predicted_correlation(correction: &[(f64, f64)], stereo: &[BandStereo], scale: f64) -> f64 {
    let (mut cross, mut left, mut right) = (0.0, 0.0, 0.0);
    for band in stereo {
        let g2 = 10f64.powf(scale * gain_curve_db(correction, band.hz) / 10.0);
        cross += g2 * band.cross;
        left += g2 * band.left;
        right += g2 * band.right;
    }
    cross / (left * right).sqrt().max(1e-300)
}

/// Scales `correction` down (toward flat) until the L/R correlation change it is predicted
/// to cause, from the input's per-band stereo statistics, is at most `max_change`.
///
/// An EQ changes correlation whenever bands differ in correlation (typically mono bass and
/// wide highs): cutting bright highs of such a mix raises its correlation. Returns the
/// correction unchanged when `stereo` is empty (mono, or statistics not measured).
pub fn limit_for_correlation(
    correction: &[(f64, f64)],
    stereo: &[BandStereo],
    max_change: f64,
) -> Vec<(f64, f64)> {
    let usable = stereo.iter().any(|b| b.left > 0.0 && b.right > 0.0);
    if !usable || correction.is_empty() {
        return correction.to_vec();
    }
    let base = predicted_correlation(correction, stereo, 0.0);
    let change = |s: f64| (predicted_correlation(correction, stereo, s) - base).abs();
    let scale = if change(1.0) <= max_change {
        1.0
    } else {
        // The change grows with the scale; bisect for the largest scale within bounds.
        let (mut lo, mut hi) = (0.0, 1.0);
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if change(mid) <= max_change {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    };
    correction.iter().map(|&(hz, g)| (hz, g * scale)).collect()
}

/// The continuous gain curve (dB) through the band gains; see the module documentation.
fn gain_curve_db(bands: &[(f64, f64)], hz: f64) -> f64 {
    let (Some(&(f_lo, g_lo)), Some(&(f_hi, g_hi))) = (bands.first(), bands.last()) else {
        return 0.0;
    };
    let smooth = |t: f64| 0.5 - 0.5 * (PI * t.clamp(0.0, 1.0)).cos();
    if hz <= f_lo {
        if g_lo >= 0.0 {
            // Fade boosts out over the octave below the lowest band.
            let t = if hz > 0.0 {
                (hz / (f_lo / 2.0)).log2()
            } else {
                0.0
            };
            return g_lo * smooth(t);
        }
        return g_lo;
    }
    if hz >= f_hi {
        return g_hi;
    }
    for pair in bands.windows(2) {
        let ((f0, g0), (f1, g1)) = (pair[0], pair[1]);
        if hz <= f1 {
            let t = (hz / f0).log2() / (f1 / f0).log2();
            return g0 + (g1 - g0) * smooth(t);
        }
    }
    g_hi
}

/// Largest realised octave-band gain of the EQ, dB, both absolute and relative to the
/// realised 1 kHz band. It is [`MAX_CORRECTION_DB`] less 0.2 dB left for the programme-
/// dependent stages after the EQ (compressor, width) so the whole chain stays within the
/// ±6 dB tonal-balance bound of docs/QUALITY.md.
pub const REALISED_BAND_LIMIT_DB: f64 = MAX_CORRECTION_DB - 0.2;

/// Designs the taps for `bands` and, where the realised octave-band gain of the filter
/// breaks [`REALISED_BAND_LIMIT_DB`] (a band's gain is spread over a whole octave and the
/// FIR smooths the curve, so the band's realised gain differs from the gain at its centre,
/// and so does the 1 kHz band's), pulls the offending centre gains back and designs
/// again. As a last resort the whole correction is scaled toward flat, which always ends
/// within the limit.
fn design_within_band_limits(
    rate: f64,
    half: usize,
    bands: &mut [(f64, f64)],
) -> Result<Vec<f32>, DspError> {
    let mut taps = design_taps(rate, half, bands)?;
    for attempt in 0..32 {
        let excess = band_limit_excess(&taps, rate)?;
        if excess.iter().all(|(_, e)| *e == 0.0) {
            return Ok(taps);
        }
        if attempt < 16 {
            for (hz, gain) in bands.iter_mut() {
                if let Some((_, e)) = excess.iter().find(|(c, _)| (c - *hz).abs() < 1e-9) {
                    // A band's realised gain follows its centre gain only in part (its
                    // neighbours' share of the octave stays): step a little past the excess.
                    *gain -= 1.3 * e + e.signum() * 0.005;
                }
            }
        } else {
            for (_, gain) in bands.iter_mut() {
                *gain *= 0.9;
            }
        }
        taps = design_taps(rate, half, bands)?;
    }
    // 0.9^16 of any correction within ±6 dB is within any sensible limit; flat otherwise.
    for (_, gain) in bands.iter_mut() {
        *gain = 0.0;
    }
    design_taps(rate, half, bands)
}

/// The symmetric, Hann-windowed FIR (`2·half − 1` taps) through the gain curve of `bands`.
fn design_taps(rate: f64, half: usize, bands: &[(f64, f64)]) -> Result<Vec<f32>, DspError> {
    let n_taps = 2 * half - 1;
    let centre = half - 1;
    let fft_len = 4 * 2 * half;
    let mut planner = RealFftPlanner::<f64>::new();
    let design_inv = planner.plan_fft_inverse(fft_len);
    let mut response: Vec<Complex<f64>> = (0..=fft_len / 2)
        .map(|k| {
            let hz = k as f64 * rate / fft_len as f64;
            Complex::new(10f64.powf(gain_curve_db(bands, hz) / 20.0), 0.0)
        })
        .collect();
    let mut impulse = vec![0.0f64; fft_len];
    design_inv
        .process(&mut response, &mut impulse)
        .map_err(|e| DspError::Parameter(format!("EQ design failed: {e}")))?;
    let mut taps = vec![0.0f32; n_taps];
    for j in 0..half {
        // Zero-phase response: h[j] = h[N-j]; average them for exact symmetry.
        let h = if j == 0 {
            impulse[0]
        } else {
            0.5 * (impulse[j] + impulse[fft_len - j])
        } / fft_len as f64;
        let w = 0.5 + 0.5 * (PI * j as f64 / half as f64).cos(); // Hann, centred
        let v = (h * w) as f32;
        taps[centre + j] = v;
        taps[centre - j] = v;
    }
    Ok(taps)
}

/// Realised octave-band power gains (dB) of `taps` at every band centre of
/// [`BAND_CENTRES_HZ`] below 0.45·`rate`: the band's `|H|²` averaged over its FFT bins
/// (edges `c/√2 .. c·√2`, as the analyser's), weighted per hertz by `f⁰`, `f⁻¹` and `f⁻²`
/// (white, pink and brown programme), each weighting kept separately.
fn realised_band_gains_db(taps: &[f32], rate: f64) -> Result<Vec<(f64, [f64; 3])>, DspError> {
    let fft_len = (4 * taps.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(fft_len);
    let mut time = forward.make_input_vec();
    for (t, &v) in time.iter_mut().zip(taps) {
        *t = f64::from(v);
    }
    let mut freq = forward.make_output_vec();
    forward
        .process(&mut time, &mut freq)
        .map_err(|e| DspError::Parameter(format!("EQ check failed: {e}")))?;
    let bin_hz = rate / fft_len as f64;
    Ok(BAND_CENTRES_HZ
        .iter()
        .filter(|&&c| c < 0.45 * rate)
        .map(|&c| {
            let (lo, hi) = (c / 2f64.sqrt(), c * 2f64.sqrt());
            let mut sums = [(0.0f64, 0.0f64); 3];
            for (k, x) in freq.iter().enumerate() {
                let hz = k as f64 * bin_hz;
                if hz < lo || hz >= hi || hz >= 0.5 * rate {
                    continue;
                }
                let power = x.norm_sqr();
                for (p, sum) in sums.iter_mut().enumerate() {
                    let w = hz.powi(-(p as i32));
                    sum.0 += w * power;
                    sum.1 += w;
                }
            }
            let db = sums.map(|(num, den)| {
                if den > 0.0 {
                    10.0 * (num / den).max(1e-30).log10()
                } else {
                    0.0
                }
            });
            (c, db)
        })
        .collect())
}

/// For each band, how far (dB, signed: positive = too loud) its realised gain passes
/// [`REALISED_BAND_LIMIT_DB`], absolute or relative to the realised 1 kHz band, in the
/// worst of the three spectral weightings; 0 where it is within.
fn band_limit_excess(taps: &[f32], rate: f64) -> Result<Vec<(f64, f64)>, DspError> {
    let gains = realised_band_gains_db(taps, rate)?;
    let reference = gains
        .iter()
        .find(|(c, _)| *c == 1000.0)
        .map_or([0.0; 3], |(_, g)| *g);
    let limit = REALISED_BAND_LIMIT_DB;
    Ok(gains
        .iter()
        .map(|&(c, g)| {
            let mut worst = 0.0f64;
            for w in 0..3 {
                for level in [g[w], g[w] - reference[w]] {
                    let over = if level > limit {
                        level - limit
                    } else if level < -limit {
                        level + limit
                    } else {
                        0.0
                    };
                    if over.abs() > worst.abs() {
                        worst = over;
                    }
                }
            }
            (c, worst)
        })
        .collect())
}

/// Linear-phase FIR equaliser applied by FFT convolution; see the module documentation.
pub struct LinearPhaseEq {
    channels: usize,
    taps: Vec<f32>,
    /// FFT of the taps, scaled by 1/N so the inverse FFT needs no normalisation.
    spectrum: Vec<Complex<f32>>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    /// Per channel: the last `taps.len() - 1` input samples.
    history: Vec<Vec<f32>>,
    time: Vec<f32>,
    freq: Vec<Complex<f32>>,
    scratch_fwd: Vec<Complex<f32>>,
    scratch_inv: Vec<Complex<f32>>,
}

impl std::fmt::Debug for LinearPhaseEq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinearPhaseEq")
            .field("channels", &self.channels)
            .field("taps", &self.taps.len())
            .field("fft_len", &self.time.len())
            .finish()
    }
}

impl LinearPhaseEq {
    /// Builds the EQ for `channels` channels at `sample_rate` Hz from band gains
    /// `(centre Hz, gain dB)` such as [`design_correction`] returns. Gains beyond
    /// ±[`MAX_CORRECTION_DB`] are rejected; bands at or above 0.45·`sample_rate` are ignored
    /// (the gain of the highest usable band is held up to Nyquist).
    pub fn new(
        sample_rate: u32,
        channels: usize,
        band_gains_db: &[(f64, f64)],
    ) -> Result<Self, DspError> {
        check_format(sample_rate, channels)?;
        let rate = f64::from(sample_rate);
        let mut bands = Vec::with_capacity(band_gains_db.len());
        for &(hz, db) in band_gains_db {
            if !(hz.is_finite() && hz > 0.0) {
                return Err(DspError::Parameter(format!(
                    "EQ band frequency must be a positive number, got {hz}"
                )));
            }
            super::check_range(
                "EQ band gain (dB)",
                db,
                -MAX_CORRECTION_DB,
                MAX_CORRECTION_DB,
            )?;
            if hz < 0.45 * rate {
                bands.push((hz, db));
            }
        }
        bands.sort_by(|a, b| a.0.total_cmp(&b.0));

        let half = (sample_rate as usize / 25).next_power_of_two();
        let taps = design_within_band_limits(rate, half, &mut bands)?;
        let n_taps = taps.len();
        // 8·2H points: 87.5 % of each FFT is output. Measured on one core (realfft f32,
        // forward + inverse per output frame, 2H = 4096): 32768 points cost 0.06 s per
        // channel of a 321 s track, 16384 points (75 % output) 0.09–0.13 s.
        let fft_len = 8 * 2 * half;

        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(fft_len);
        let inverse = planner.plan_fft_inverse(fft_len);
        let mut padded = forward.make_input_vec();
        padded[..n_taps].copy_from_slice(&taps);
        let mut spectrum = forward.make_output_vec();
        forward
            .process(&mut padded, &mut spectrum)
            .map_err(|e| DspError::Parameter(format!("EQ design failed: {e}")))?;
        let scale = 1.0 / fft_len as f32;
        for c in &mut spectrum {
            *c *= scale;
        }

        Ok(LinearPhaseEq {
            channels,
            history: vec![vec![0.0; n_taps - 1]; channels],
            time: forward.make_input_vec(),
            freq: forward.make_output_vec(),
            scratch_fwd: forward.make_scratch_vec(),
            scratch_inv: inverse.make_scratch_vec(),
            taps,
            spectrum,
            forward,
            inverse,
        })
    }

    /// The FIR taps (symmetric; the centre tap is at index `latency()`).
    pub fn taps(&self) -> &[f32] {
        &self.taps
    }

    /// The most frames one FFT pass can filter; blocks of this length are the most
    /// efficient (any length works).
    pub fn preferred_block_len(&self) -> usize {
        self.time.len() - (self.taps.len() - 1)
    }

    /// Filters `chunk` (at most `preferred_block_len` frames) of channel `ch` in place.
    fn filter_chunk(&mut self, ch: usize, chunk: &mut [f32]) {
        let n = self.time.len();
        let keep = self.taps.len() - 1;
        let c = chunk.len();
        let start = n - keep - c;
        self.time[..start].fill(0.0);
        self.time[start..start + keep].copy_from_slice(&self.history[ch]);
        self.time[n - c..].copy_from_slice(chunk);
        self.history[ch].copy_from_slice(&self.time[n - keep..]);

        let fwd = self.forward.process_with_scratch(
            &mut self.time,
            &mut self.freq,
            &mut self.scratch_fwd,
        );
        debug_assert!(fwd.is_ok(), "buffer lengths are fixed in new");
        for (x, h) in self.freq.iter_mut().zip(&self.spectrum) {
            *x *= *h;
        }
        // A real, symmetric filter: the DC and Nyquist bins are real.
        if let Some(first) = self.freq.first_mut() {
            first.im = 0.0;
        }
        if let Some(last) = self.freq.last_mut() {
            last.im = 0.0;
        }
        let inv = self.inverse.process_with_scratch(
            &mut self.freq,
            &mut self.time,
            &mut self.scratch_inv,
        );
        debug_assert!(inv.is_ok(), "buffer lengths are fixed in new");
        chunk.copy_from_slice(&self.time[n - c..]);
    }
}

impl BlockProcessor for LinearPhaseEq {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        let step = self.preferred_block_len();
        for ch in 0..block.len().min(self.channels) {
            let len = block[ch].len();
            let mut offset = 0;
            while offset < len {
                let end = (offset + step).min(len);
                // Split borrows: take the channel out of `block` while filtering.
                let samples = &mut block[ch][offset..end];
                self.filter_chunk(ch, samples);
                offset = end;
            }
        }
    }

    /// Half the FIR length: `H − 1` frames.
    fn latency(&self) -> usize {
        self.taps.len() / 2
    }

    fn reset(&mut self) {
        for h in &mut self.history {
            h.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::test_signals::{TestRng, rms, run_stage, sine};

    const BANDS: [f64; 10] = [
        31.25, 62.5, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0,
    ];

    fn flat() -> Vec<(f64, f64)> {
        BANDS.iter().map(|&hz| (hz, 0.0)).collect()
    }

    /// Gain (dB) of `eq` for a sine at `hz`, measured after the latency and settling.
    fn sine_gain_db(eq: &mut LinearPhaseEq, hz: f64, rate: u32) -> f64 {
        let len = rate as usize * 2;
        let x = vec![sine(hz, 0.5, rate, len)];
        let y = run_stage(eq, &x, 4096, true);
        let skip = rate as usize / 2;
        let lat = eq.latency();
        20.0 * (rms(&y[0][skip + lat..len + lat]) / rms(&x[0][skip..len])).log10()
    }

    #[test]
    fn flat_correction_is_transparent() {
        let rate = 44_100;
        let mut eq = LinearPhaseEq::new(rate, 2, &flat()).unwrap();
        let mut rng = TestRng::new(1);
        let x: Vec<Vec<f32>> = (0..2)
            .map(|_| {
                (0..rate as usize * 2)
                    .map(|_| (0.9 * rng.bipolar()) as f32)
                    .collect()
            })
            .collect();
        for block in [1000, 65_536] {
            eq.reset();
            let y = run_stage(&mut eq, &x, block, true);
            let lat = eq.latency();
            for (xc, yc) in x.iter().zip(&y) {
                let diff: Vec<f32> = xc.iter().zip(&yc[lat..]).map(|(a, b)| a - b).collect();
                let null_db = 20.0 * (rms(&diff) / rms(xc)).log10();
                assert!(null_db < -90.0, "block {block}: null {null_db:.1} dB");
            }
        }
    }

    /// The FFT convolution is the FIR: on programme material, whatever the block lengths
    /// (shorter and longer than one FFT hop), every output sample is within 2e-6 of the
    /// direct f64 convolution with the taps (f32 FFT rounding; the signal peaks at 0.9).
    #[test]
    fn overlap_save_equals_direct_convolution() {
        let gains: Vec<(f64, f64)> = BANDS
            .iter()
            .zip([4.0, 2.0, -1.0, 0.5, 0.0, 0.0, -2.0, 1.5, 3.0, -6.0])
            .map(|(&hz, g)| (hz, g))
            .collect();
        let rate = 44_100;
        let x = crate::dsp::test_signals::music_like(5, rate, 100_000, 1, 0.9);
        let mut eq = LinearPhaseEq::new(rate, 1, &gains).unwrap();
        let taps: Vec<f64> = eq.taps().iter().map(|&t| f64::from(t)).collect();
        let hop = eq.preferred_block_len();
        for block in [1000, hop - 1, hop + 5, 3 * hop] {
            eq.reset();
            let y = run_stage(&mut eq, &x, block, false);
            // Check stretches around the hop boundaries and the end.
            for start in [hop - 50, 2 * hop - 30, x[0].len() - 60] {
                for n in start..start + 40 {
                    let direct: f64 = taps
                        .iter()
                        .enumerate()
                        .filter(|&(k, _)| k <= n)
                        .map(|(k, t)| t * f64::from(x[0][n - k]))
                        .sum();
                    let err = (f64::from(y[0][n]) - direct).abs();
                    assert!(err <= 2e-6, "block {block}, sample {n}: error {err:e}");
                }
            }
        }
    }

    #[test]
    fn boost_at_125_hz_measures_on_a_sine() {
        for rate in [44_100, 48_000, 96_000] {
            let gains: Vec<(f64, f64)> = BANDS
                .iter()
                .map(|&hz| (hz, if hz == 125.0 { 3.0 } else { 0.0 }))
                .collect();
            let mut eq = LinearPhaseEq::new(rate, 1, &gains).unwrap();
            let at_125 = sine_gain_db(&mut eq, 125.0, rate);
            assert!(
                (at_125 - 3.0).abs() <= 0.3,
                "{rate} Hz: +{at_125:.3} dB at 125 Hz"
            );
            eq.reset();
            let at_1k = sine_gain_db(&mut eq, 1000.0, rate);
            println!("eq at {rate} Hz: {at_125:+.3} dB at 125 Hz, {at_1k:+.4} dB at 1 kHz");
            assert!(at_1k.abs() < 0.05, "{rate} Hz: {at_1k:.3} dB at 1 kHz");
        }
    }

    #[test]
    fn impulse_response_is_symmetric_and_delayed_by_latency() {
        let gains: Vec<(f64, f64)> = BANDS
            .iter()
            .zip([4.0, 2.0, -1.0, 0.5, 0.0, 0.0, -2.0, 1.5, 3.0, -6.0])
            .map(|(&hz, g)| (hz, g))
            .collect();
        let mut eq = LinearPhaseEq::new(48_000, 1, &gains).unwrap();
        let taps = eq.taps().to_vec();
        let c = eq.latency();
        assert_eq!(taps.len(), 2 * c + 1);
        for j in 0..=c {
            assert_eq!(taps[c + j], taps[c - j], "tap {j}");
        }
        let mut x = vec![vec![0.0f32; 3 * taps.len()]];
        x[0][10] = 1.0;
        let y = run_stage(&mut eq, &x, 777, false);
        // The output is the FIR itself starting at the impulse: its centre at 10 + latency.
        let (argmax, _) =
            y[0].iter().enumerate().fold(
                (0, 0.0f32),
                |b, (i, &v)| if v.abs() > b.1 { (i, v.abs()) } else { b },
            );
        assert_eq!(argmax, 10 + c);
        for (i, &t) in taps.iter().enumerate() {
            assert!((y[0][10 + i] - t).abs() < 1e-6, "tap {i}");
        }
    }

    #[test]
    fn corrections_are_bounded_smoothed_and_partial() {
        let target = flat();
        let measured: Vec<(f64, f64)> = BANDS
            .iter()
            .zip([
                15.0,
                12.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                -20.0,
                -80.0,
                f64::NEG_INFINITY,
            ])
            .map(|(&hz, db)| (hz, db))
            .collect();
        let full = design_correction(&measured, &target, 1.0, MAX_CORRECTION_DB).unwrap();
        assert_eq!(full.len(), 10);
        for &(_, g) in &full {
            assert!(g.abs() <= MAX_CORRECTION_DB, "{full:?}");
        }
        assert_eq!(full[0].1, -6.0); // 15 dB too much sub: cut, bounded
        assert!(full[7].1 > 0.0 && full[7].1 <= 6.0); // dull 4 kHz: boosted, bounded
        assert_eq!(full[8].1, 5.0); // empty 8 kHz band: no own boost, only ¼ of 4 kHz's
        assert_eq!(full[9].1, 0.0); // unmeasurable 16 kHz band: untouched
        // Smoothing: a lone 4 dB step spreads to its neighbours.
        let mut lone = flat();
        lone[2].1 = -4.0;
        let c = design_correction(&lone, &target, 1.0, 6.0).unwrap();
        assert!(
            (c[2].1 - 2.0).abs() < 1e-12 && (c[1].1 - 1.0).abs() < 1e-12,
            "{c:?}"
        );
        assert_eq!(c[5].1, 0.0);
        // Anchored at 1 kHz: a dip next to 1 kHz lifts the bands relative to it.
        let mut near = flat();
        near[4].1 = -4.0;
        let c = design_correction(&near, &target, 1.0, 6.0).unwrap();
        assert!(
            (c[5].1).abs() < 1e-12 && (c[4].1 - 1.0).abs() < 1e-12,
            "{c:?}"
        );
        assert!((c[9].1 + 1.0).abs() < 1e-12, "{c:?}");
        // Partial amount.
        let half = design_correction(&lone, &target, 0.5, 6.0).unwrap();
        assert!((half[2].1 - 1.0).abs() < 1e-12);
        let none = design_correction(&lone, &target, 0.0, 6.0).unwrap();
        assert!(none.iter().all(|&(_, g)| g == 0.0));
        // Invalid parameters.
        assert!(design_correction(&lone, &target, 1.5, 6.0).is_err());
        assert!(design_correction(&lone, &target, 0.5, 7.0).is_err());
        assert!(LinearPhaseEq::new(44_100, 2, &[(1000.0, 6.5)]).is_err());
        assert!(LinearPhaseEq::new(44_100, 2, &[(f64::NAN, 1.0)]).is_err());
    }

    #[test]
    fn correlation_guard_scales_the_correction_down() {
        // Mono bass (fully correlated), uncorrelated highs, equal power per band.
        let stereo: Vec<BandStereo> = BANDS
            .iter()
            .map(|&hz| BandStereo {
                hz,
                left: 1.0,
                right: 1.0,
                cross: if hz < 300.0 { 1.0 } else { 0.0 },
            })
            .collect();
        // Cutting everything above 300 Hz by 6 dB raises the correlation a lot.
        let cut: Vec<(f64, f64)> = BANDS
            .iter()
            .map(|&hz| (hz, if hz < 300.0 { 0.0 } else { -6.0 }))
            .collect();
        let before = predicted_correlation(&cut, &stereo, 0.0);
        let unguarded = predicted_correlation(&cut, &stereo, 1.0);
        assert!(unguarded - before > 0.1, "{before} → {unguarded}");
        let limited = limit_for_correlation(&cut, &stereo, MAX_CORRELATION_CHANGE);
        let after = predicted_correlation(&limited, &stereo, 1.0);
        assert!((after - before).abs() <= MAX_CORRELATION_CHANGE + 1e-9);
        assert!(
            (after - before).abs() > MAX_CORRELATION_CHANGE - 1e-3,
            "not over-limited"
        );
        assert!(limited[9].1 > -6.0 && limited[9].1 < 0.0);
        // Without statistics (mono, or not measured) nothing changes.
        assert_eq!(limit_for_correlation(&cut, &[], 0.04), cut);
        // A correction that keeps correlation passes untouched.
        let tilt: Vec<(f64, f64)> = BANDS.iter().map(|&hz| (hz, 2.0)).collect();
        assert_eq!(limit_for_correlation(&tilt, &stereo, 0.04), tilt);
    }

    #[test]
    fn realised_response_stays_within_the_bounds() {
        // Alternating ±6 dB: the worst case for overshoot between bands.
        let gains: Vec<(f64, f64)> = BANDS
            .iter()
            .enumerate()
            .map(|(i, &hz)| (hz, if i % 2 == 0 { 6.0 } else { -6.0 }))
            .collect();
        let eq = LinearPhaseEq::new(44_100, 1, &gains).unwrap();
        let taps = eq.taps();
        let mut worst = 0.0f64;
        for k in 1..400 {
            let hz = 20.0 * (1000.0f64).powf(k as f64 / 400.0); // 20 Hz .. 20 kHz
            let w = 2.0 * PI * hz / 44_100.0;
            let (mut re, mut im) = (0.0, 0.0);
            for (n, &t) in taps.iter().enumerate() {
                re += f64::from(t) * (w * n as f64).cos();
                im += f64::from(t) * (w * n as f64).sin();
            }
            let db = 10.0 * (re * re + im * im).log10();
            worst = worst.max(db.abs());
            assert!(db.abs() <= 6.05, "{hz:.1} Hz: {db:.2} dB");
        }
        println!("eq: largest realised gain for ±6 dB alternating bands: {worst:.3} dB");
    }

    #[test]
    fn realised_octave_bands_stay_within_the_limit_re_1_khz() {
        // Full boosts below 1 kHz and full cuts above: at the band centres every gain is
        // within ±6 dB, but the octave bands, the FIR's smoothing and the 1 kHz band's own
        // realised gain would carry the bands past the limit without the check.
        let gains: Vec<(f64, f64)> = BANDS
            .iter()
            .map(|&hz| {
                (
                    hz,
                    if hz < 1000.0 {
                        6.0
                    } else if hz > 1000.0 {
                        -6.0
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        for rate in [44_100, 48_000, 96_000] {
            let eq = LinearPhaseEq::new(rate, 1, &gains).unwrap();
            let bands = realised_band_gains_db(eq.taps(), f64::from(rate)).unwrap();
            let reference = bands.iter().find(|b| b.0 == 1000.0).unwrap().1;
            let mut worst = 0.0f64;
            for (hz, g) in &bands {
                for w in 0..3 {
                    let (absolute, relative) = (g[w], g[w] - reference[w]);
                    worst = worst.max(absolute.abs()).max(relative.abs());
                    assert!(
                        absolute.abs() <= REALISED_BAND_LIMIT_DB + 1e-6
                            && relative.abs() <= REALISED_BAND_LIMIT_DB + 1e-6,
                        "{rate} Hz, band {hz} Hz, weighting {w}: {absolute:.3} dB, {relative:.3} dB re 1 kHz"
                    );
                }
            }
            // The check pulls back only what passes the limit: the extremes stay close to it.
            assert!(
                worst > REALISED_BAND_LIMIT_DB - 0.3,
                "{rate} Hz: largest {worst:.3} dB"
            );
        }
    }

    #[test]
    fn empty_correction_and_low_rates_work() {
        let mut eq = LinearPhaseEq::new(8_000, 1, &[]).unwrap();
        let c = eq.latency();
        assert!((eq.taps()[c] - 1.0).abs() < 1e-6);
        let others = eq.taps().iter().enumerate().filter(|&(i, _)| i != c);
        assert!(others.fold(0.0f32, |m, (_, t)| m.max(t.abs())) < 1e-9);
        // 8 kHz: the 4k/8k/16k bands are ignored, not an error.
        let mut g = flat();
        g[8].1 = 6.0;
        let mut eq8 = LinearPhaseEq::new(8_000, 1, &g).unwrap();
        let gain = sine_gain_db(&mut eq8, 1000.0, 8_000);
        assert!(gain.abs() < 0.05);
        eq.reset();
    }
}
