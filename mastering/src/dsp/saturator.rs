//! Smooth saturator for the loudest targets: linear below a knee, then a `tanh` curve that
//! approaches the ceiling without ever reaching it.
//!
//! ```text
//! |x| ≤ k·A:  y = x
//! |x| > k·A:  y = sign(x) · (k·A + (1 − k)·A · tanh((|x| − k·A) / ((1 − k)·A)))
//! ```
//!
//! `A` is the ceiling (linear) and `k` the knee as a fraction of it. The curve and its slope
//! are continuous at the knee (slope 1 on both sides), so it never hard-clips: it rounds
//! peaks off, progressively. The chain uses it only at the top drive levels of the limiter
//! (see [`super::styles::LIMITER_DRIVE`]), for targets a limiter alone cannot reach under
//! the ceiling; the true-peak limiter after it still guarantees the ceiling (inter-sample
//! peaks). It is memoryless: no latency, no state.

use super::{DspError, check_range, db_to_lin};
use crate::stage::BlockProcessor;

/// Memoryless soft saturator; see the module documentation.
#[derive(Debug, Clone)]
pub struct SoftSaturator {
    knee: f32,
    span: f32,
    inv_span: f32,
}

impl SoftSaturator {
    /// A saturator approaching `ceiling_dbfs` (-20..=0), linear below `knee_fraction`
    /// (0.1..=0.95) of it.
    pub fn new(ceiling_dbfs: f64, knee_fraction: f64) -> Result<Self, DspError> {
        let ceiling = db_to_lin(check_range("saturator ceiling", ceiling_dbfs, -20.0, 0.0)?);
        let k = check_range("saturator knee", knee_fraction, 0.1, 0.95)?;
        let span = (1.0 - k) * ceiling;
        Ok(SoftSaturator {
            knee: (k * ceiling) as f32,
            span: span as f32,
            inv_span: (1.0 / span) as f32,
        })
    }

    /// The curve at one sample.
    #[inline]
    pub fn shape(&self, x: f32) -> f32 {
        let a = x.abs();
        if a <= self.knee {
            x
        } else {
            let y = self.knee + self.span * ((a - self.knee) * self.inv_span).tanh();
            y.copysign(x)
        }
    }
}

impl BlockProcessor for SoftSaturator {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        for v in block.iter_mut().flatten() {
            *v = self.shape(*v);
        }
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_below_the_knee_smooth_and_bounded_above() {
        let s = SoftSaturator::new(-1.0, 0.5).unwrap();
        let ceiling = db_to_lin(-1.0) as f32;
        for i in 0..=1000 {
            let x = i as f32 / 1000.0 * 0.5 * ceiling;
            assert_eq!(s.shape(x), x);
            assert_eq!(s.shape(-x), -x);
        }
        // Never passes the ceiling, is monotonic, and its slope is continuous (no corner).
        let mut prev = 0.0f32;
        let mut prev_slope = 1.0f32;
        let dx = 1e-3f32;
        for i in 1..20_000 {
            let x = i as f32 * dx;
            let y = s.shape(x);
            assert!(y <= ceiling && y >= prev, "x {x}: {y}");
            let slope = (y - prev) / dx;
            assert!((slope - prev_slope).abs() < 0.01, "corner at {x}");
            prev = y;
            prev_slope = slope;
        }
        assert!(SoftSaturator::new(1.0, 0.5).is_err());
        assert!(SoftSaturator::new(-1.0, 1.0).is_err());
    }
}
