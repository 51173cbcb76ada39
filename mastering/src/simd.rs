//! Runtime CPU dispatch of the hot DSP kernels: the exact true-peak scan
//! (`meter::true_peak::ExactPeak::scan`), the meter's ebur128-style interpolation and the
//! limiter's ebur128-style reading (`dsp::limiter::ebur128_style`); also two integer or
//! multiply-then-add loops that the baseline vectorises poorly and whose results are the
//! same bit for bit: the dither's hash-and-quantise loop (`dsp::dither`) and the FLAC
//! coder's fixed-predictor sums (`encode::flac_frame`).
//!
//! The release build targets baseline x86-64 (SSE2: 4 f32 lanes, no FMA). [`dispatch`]
//! runs a kernel compiled again with the best instruction set the CPU has (`pulp`: on
//! x86-64 the v3 level, AVX2 + FMA, where the CPU has it; NEON on aarch64; otherwise the
//! baseline code), so a kernel written as plain loops over fixed-size arrays
//! autovectorises 8 lanes wide inside it. Kernels are `#[inline(always)]` functions (a
//! function that is not inlined into the dispatched closure is compiled for the baseline).
//!
//! Kernels that take a `const FMA: bool` use [`madd32`]: a fused multiply-add in the
//! dispatched code when the instruction set has one, the separate multiply and add of the
//! baseline otherwise (a fused `mul_add` without the instruction is a slow library call).
//! Without `FMA` the dispatched code computes exactly what the baseline computes (the same
//! operations in the same order per lane); with it, results differ by rounding only
//! (tests in each kernel's module state the tolerance).
//!
//! `unsafe` is forbidden in this workspace: `pulp`'s safe `Arch::dispatch` does the
//! target-feature work.
//!
//! Measured (`examples/kernel_bench.rs`, thread CPU time, one core of a shared 2-core AMD
//! EPYC): dispatched against the same code built for the baseline, the scan 1.4× (18.9 vs
//! 26.6 ns per sample, every tile read), the meter's interpolation 1.6× (3.1 vs 4.8 ns),
//! the limiter's ebur128-style reading 1.7× (5.0 vs 8.5 ns); the whole edm master of the
//! dense 322 s track 3.40 → 2.58 s of user CPU (this module plus the scan's restructured
//! tile and bound loops, which also speed up the baseline build). Tried and not kept: the
//! meter's stereo K-weighting dispatched with FMA (scalar, or both channels in f64 lanes) ran
//! 0.4–0.6× the baseline's speed, and the limiter's gain computer (a serial recursion)
//! measured 0.9–1.3×, within the noise: both stay baseline code.

/// A kernel to dispatch: `run::<FMA>` must be `#[inline(always)]` and call only
/// `#[inline(always)]` code, so that all of it is compiled inside the dispatched function.
pub(crate) trait Kernel {
    type Output;
    /// Runs the kernel; `FMA` when the instruction set it is compiled for has a fused
    /// multiply-add.
    fn run<const FMA: bool>(self) -> Self::Output;
}

/// The kernel in the form `pulp` dispatches: its `with_simd` is compiled with the detected
/// target features and inlines the kernel. (A closure does not work: `pulp` calls it
/// through a function that is not always inlined, so it was compiled for the baseline and
/// its `mul_add` became a library call, 20-40× slower, measured with `kernel_bench`.)
struct Dispatched<K> {
    kernel: K,
    fma: bool,
}

impl<K: Kernel> pulp::WithSimd for Dispatched<K> {
    type Output = K::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> K::Output {
        if self.fma {
            self.kernel.run::<true>()
        } else {
            self.kernel.run::<false>()
        }
    }
}

/// Runs `kernel` compiled for the best instruction set of this CPU, with `FMA` when that
/// set has a fused multiply-add.
#[inline(always)]
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    let arch = pulp::Arch::new();
    let fma = has_fma(arch);
    arch.dispatch(Dispatched { kernel, fma })
}

/// Whether the instruction set `arch` dispatches to has a fused multiply-add.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn has_fma(arch: pulp::Arch) -> bool {
    // Every level above the scalar one (x86-64-v3, v4) includes FMA.
    !matches!(arch, pulp::Arch::Scalar)
}

#[cfg(target_arch = "aarch64")]
fn has_fma(_arch: pulp::Arch) -> bool {
    // Fused multiply-add is part of the aarch64 base instruction set.
    true
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn has_fma(_arch: pulp::Arch) -> bool {
    false
}

/// The instruction set [`dispatch`] picks on this machine (for reports and benchmarks).
pub fn dispatched_isa() -> &'static str {
    let arch = pulp::Arch::new();
    match (cfg!(target_arch = "x86_64"), has_fma(arch)) {
        (true, true) => "x86-64-v3 (AVX2 + FMA) or above",
        (true, false) => "x86-64 baseline (SSE2)",
        (false, true) => "NEON + FMA",
        (false, false) => "portable",
    }
}

/// `a · b + c` in `f32`: fused (one rounding) when `FMA`, else a multiply then an add.
#[inline(always)]
pub(crate) fn madd32<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}
