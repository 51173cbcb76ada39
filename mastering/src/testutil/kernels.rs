//! The dispatched DSP kernels (`crate::simd`) and the same kernels compiled for the
//! baseline instruction set, for `examples/kernel_bench.rs` (feature `testutil`). Each
//! returns a value computed from its whole input so that the work cannot be optimised away.

use crate::dsp::DspError;

/// The exact true-peak detector over every tile of `x` (nothing skipped); its largest reading.
pub fn exact_scan(x: &[f32], portable: bool) -> f32 {
    crate::meter::true_peak::bench::exact_scan(x, portable)
}

/// The meter's ebur128-style interpolation over `x` at `rate`; its largest value.
pub fn ebur128_interpolation(x: &[f32], rate: u32, portable: bool) -> f32 {
    crate::meter::true_peak::bench::interpolation(x, rate, portable)
}

/// The limiter's ebur128-style reading of every frame of `x` at `rate`; its largest value.
pub fn ebur128_raise(x: &[f32], rate: u32, portable: bool) -> Result<f32, DspError> {
    crate::dsp::limiter::ebur128_style::bench_raise(x, rate, portable)
}
