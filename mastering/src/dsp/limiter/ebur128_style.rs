//! The ebur128/ffmpeg-style reading of per-frame peaks: ebur128's own interpolator (a
//! Hann-windowed sinc over 48 coefficients: 4 phases × 12 taps below 96 kHz, 2 × 24 from
//! 96 kHz up). It under-reads near Nyquist (the exact detector covers that), but it can also
//! read HIGHER than the band-limited signal's true peak — by 0.2 dB on a music-like signal at
//! 48 kHz (`dsp::quality_tests::limiter_true_peak_never_exceeds_the_ceiling`, seed
//! 7287410070903868417) — and ffmpeg's `ebur128=peak=true`, our users' meter, reads exactly
//! this. The limiter holds the larger of both readings, so what it writes passes both meters
//! without a corrective pass.

use crate::dsp::DspError;
use crate::meter::true_peak::interpolation_phases;
use crate::simd::{Kernel, madd32};

/// The ebur128-style per-frame detector; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Ebur128Style {
    interp: Interpolator,
    /// Taps per phase.
    taps: usize,
    /// Largest sum of absolute coefficients over the phases (and 1.0 for phase 0): no
    /// interpolated value exceeds this times the largest sample magnitude in its window.
    coeff_bound: f32,
}

impl Ebur128Style {
    pub(crate) fn new(sample_rate: u32) -> Result<Self, DspError> {
        // The meter's ebur128 phases, each stored reversed: `detect` wants them in tap order.
        let (taps, mut phases) = interpolation_phases(sample_rate);
        for phase in &mut phases {
            phase.reverse();
        }
        let coeff_bound = phases
            .iter()
            .map(|p| p.iter().map(|c| c.abs()).sum::<f32>())
            .fold(1.0f32, f32::max);
        Ok(Ebur128Style {
            interp: Interpolator::from_phases(&phases)?,
            taps,
            coeff_bound,
        })
    }

    /// Samples before its centre sample that a frame's reading needs.
    pub(crate) fn lead(&self) -> usize {
        self.taps / 2 - 1
    }

    /// Raises `peak[i]` (i < n) to the reading centred between `buf[i + lead]` and the
    /// sample after it; `buf` holds at least `n + taps + TILE` samples. Windows whose samples
    /// cannot reach `report_above` are skipped.
    /// Runs the kernel compiled for this CPU (`crate::simd`: AVX2 + FMA where present).
    pub(crate) fn raise(&self, buf: &[f32], n: usize, peak: &mut [f32], report_above: f32) {
        crate::simd::dispatch(Raise {
            style: self,
            buf,
            n,
            peak,
            report_above,
        })
    }

    /// [`Self::raise`] compiled for the baseline instruction set (tests, `kernel_bench`).
    #[cfg(any(test, feature = "testutil"))]
    pub(crate) fn raise_portable(&self, buf: &[f32], n: usize, peak: &mut [f32], above: f32) {
        self.raise_kernel::<false>(buf, n, peak, above)
    }

    /// [`Self::raise`], and for the windows it skips, raises `bound[i]` to an upper bound of
    /// their readings instead (the coefficients' largest absolute sum times the window's
    /// largest sample magnitude, at most `report_above`).
    pub(crate) fn raise_bounded(
        &self,
        buf: &[f32],
        n: usize,
        (peak, bound): (&mut [f32], &mut [f32]),
        report_above: f32,
    ) {
        crate::simd::dispatch(RaiseBounded {
            style: self,
            buf,
            n,
            peak,
            bound,
            report_above,
        })
    }

    #[inline(always)]
    fn raise_kernel<const FMA: bool>(
        &self,
        buf: &[f32],
        n: usize,
        peak: &mut [f32],
        report_above: f32,
    ) {
        let skip_level = report_above / self.coeff_bound;
        match &self.interp {
            Interpolator::Four(c) => {
                detect::<FMA, false, 12, 3>(c, buf, n, (peak, &mut []), (skip_level, 0.0))
            }
            Interpolator::Two(c) => {
                detect::<FMA, false, 24, 1>(c, buf, n, (peak, &mut []), (skip_level, 0.0))
            }
        }
    }

    #[inline(always)]
    fn raise_bounded_kernel<const FMA: bool>(
        &self,
        buf: &[f32],
        n: usize,
        out: (&mut [f32], &mut [f32]),
        report_above: f32,
    ) {
        let levels = (report_above / self.coeff_bound, self.coeff_bound);
        match &self.interp {
            Interpolator::Four(c) => detect::<FMA, true, 12, 3>(c, buf, n, out, levels),
            Interpolator::Two(c) => detect::<FMA, true, 24, 1>(c, buf, n, out, levels),
        }
    }
}

/// [`Ebur128Style::raise_bounded`]'s arguments, to dispatch (`crate::simd`).
struct RaiseBounded<'a> {
    style: &'a Ebur128Style,
    buf: &'a [f32],
    n: usize,
    peak: &'a mut [f32],
    bound: &'a mut [f32],
    report_above: f32,
}

impl Kernel for RaiseBounded<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let RaiseBounded {
            style,
            buf,
            n,
            peak,
            bound,
            report_above,
        } = self;
        style.raise_bounded_kernel::<FMA>(buf, n, (peak, bound), report_above)
    }
}

/// [`Ebur128Style::raise`]'s arguments, to dispatch (`crate::simd`).
struct Raise<'a> {
    style: &'a Ebur128Style,
    buf: &'a [f32],
    n: usize,
    peak: &'a mut [f32],
    report_above: f32,
}

impl Kernel for Raise<'_> {
    type Output = ();

    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let Raise {
            style,
            buf,
            n,
            peak,
            report_above,
        } = self;
        style.raise_kernel::<FMA>(buf, n, peak, report_above)
    }
}

/// Frames handled together by the detector (its accumulators stay in registers).
const TILE: usize = 8;

/// `max` without NaN handling (compiles to one `maxss`/`maxps`); inputs are finite.
#[inline(always)]
fn fast_max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// Phases 1..factor of the oversampling interpolator as fixed-size arrays.
#[derive(Debug, Clone)]
enum Interpolator {
    /// 4× oversampling: three phases of 12 taps (below 96 kHz).
    Four([[f32; 12]; 3]),
    /// 2× oversampling: one phase of 24 taps (96 kHz and up).
    Two([[f32; 24]; 1]),
}

impl Interpolator {
    fn from_phases(phases: &[Vec<f32>]) -> Result<Self, DspError> {
        fn arrays<const T: usize, const P: usize>(phases: &[Vec<f32>]) -> Option<[[f32; T]; P]> {
            let mut out = [[0.0f32; T]; P];
            if phases.len() != P {
                return None;
            }
            for (dst, src) in out.iter_mut().zip(phases) {
                *dst = src.as_slice().try_into().ok()?;
            }
            Some(out)
        }
        arrays::<12, 3>(phases)
            .map(Interpolator::Four)
            .or_else(|| arrays::<24, 1>(phases).map(Interpolator::Two))
            .ok_or_else(|| DspError::Parameter("unsupported oversampling factor".into()))
    }
}

/// Oversampled peak detection of one channel. `hist` holds `T - 1` past samples followed by
/// the chunk's `n` samples (and room up to a whole number of tiles); `peak[i]` is raised to
/// the largest magnitude of frame `i`'s phase-0 sample and interpolated values. Tiles whose
/// samples are all at or below `skip_level` cannot reach the ceiling and are skipped; with
/// `BOUNDED`, their frames' `bound` is raised to `coeff_bound` times the window's largest
/// magnitude (no interpolated value of theirs exceeds it).
#[inline(always)]
fn detect<const FMA: bool, const BOUNDED: bool, const T: usize, const P: usize>(
    coeffs: &[[f32; T]; P],
    hist: &[f32],
    n: usize,
    (peak, bound): (&mut [f32], &mut [f32]),
    (skip_level, coeff_bound): (f32, f32),
) {
    let keep = T - 1;
    let centre = T / 2;
    let mut i = 0;
    while i < n {
        let Some(window) = hist.get(i..i + keep + TILE) else {
            break;
        };
        let loud = if BOUNDED {
            let m = window.iter().fold(0.0f32, |a, v| fast_max(a, v.abs()));
            if m <= skip_level {
                let b = m * coeff_bound;
                let frames = TILE.min(n - i);
                for v in bound.iter_mut().skip(i).take(frames) {
                    *v = fast_max(*v, b);
                }
            }
            m > skip_level
        } else {
            window
                .iter()
                .fold(false, |any, v| any | (v.abs() > skip_level))
        };
        if loud {
            let mut acc = [[0.0f32; TILE]; P];
            for t in 0..T {
                let Ok(src) = <&[f32; TILE]>::try_from(&window[keep - t..keep - t + TILE]) else {
                    continue;
                };
                for (a, c) in acc.iter_mut().zip(coeffs) {
                    let c = c[t];
                    for l in 0..TILE {
                        a[l] = madd32::<FMA>(c, src[l], a[l]);
                    }
                }
            }
            let mut m = [0.0f32; TILE];
            for (m, x) in m.iter_mut().zip(&window[keep - centre..]) {
                *m = x.abs();
            }
            for a in &acc {
                for (m, v) in m.iter_mut().zip(a) {
                    *m = fast_max(*m, v.abs());
                }
            }
            let frames = TILE.min(n - i);
            for (p, &m) in peak[i..i + frames].iter_mut().zip(&m) {
                *p = fast_max(*p, m);
            }
        }
        i += TILE;
    }
}

/// `kernel_bench`'s entry point: every frame of `x` read (nothing skipped) at `rate`,
/// dispatched or the baseline build when `portable`.
#[cfg(feature = "testutil")]
pub(crate) fn bench_raise(x: &[f32], rate: u32, portable: bool) -> Result<f32, DspError> {
    let det = Ebur128Style::new(rate)?;
    let frames = x.len().saturating_sub(det.taps);
    let mut buf = x.to_vec();
    buf.resize(x.len() + det.taps + TILE, 0.0);
    let mut peak = vec![0.0f32; frames];
    if portable {
        det.raise_portable(&buf, frames, &mut peak, 0.0);
    } else {
        det.raise(&buf, frames, &mut peak, 0.0);
    }
    Ok(peak.iter().copied().fold(0.0, fast_max))
}

#[cfg(test)]
mod simd_tests {
    use super::*;
    use crate::meter::true_peak::adversarial::{clipped_mix, faded_sine};
    use crate::testutil::Rng;

    /// The dispatched reading is within 1e-5 relative of the baseline build's per frame
    /// (12- or 24-tap f32 sums, fused multiply-adds or not) on noise, a sine at 0.95 of
    /// Nyquist and a clipped mix, at 4× (44.1, 48 kHz) and 2× (96 kHz), nothing skipped.
    #[test]
    fn dispatched_reading_matches_the_portable_one() {
        let n = 20_000;
        let mut rng = Rng::new(11);
        let noise: Vec<f32> = (0..n).map(|_| rng.uniform() as f32).collect();
        for rate in [44_100, 48_000, 96_000] {
            let det = Ebur128Style::new(rate).unwrap();
            for (name, x) in [
                ("noise", noise.clone()),
                ("sine 0.95 Nyquist", faded_sine(0.475, 0.9, 0.3, rate, n)),
                ("clipped mix", clipped_mix(5, 6.0, n)),
            ] {
                let mut buf = x.clone();
                buf.resize(n + det.taps + TILE, 0.0);
                let frames = n - det.taps;
                let (mut a, mut b) = (vec![0.0f32; frames], vec![0.0f32; frames]);
                det.raise(&buf, frames, &mut a, 0.0);
                det.raise_portable(&buf, frames, &mut b, 0.0);
                let worst = a
                    .iter()
                    .zip(&b)
                    .map(|(p, q)| (p - q).abs() / q.max(1e-3))
                    .fold(0.0f32, f32::max);
                eprintln!("{rate} Hz {name}: largest relative difference {worst:e}");
                assert!(worst <= 1e-5, "{rate} Hz {name}: {worst}");
                assert!(a.iter().any(|&v| v > 0.5), "{rate} Hz {name}: nothing read");
            }
        }
    }
}
