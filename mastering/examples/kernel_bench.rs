//! Times the DSP kernels that run with runtime CPU dispatch (`mastering::simd`), each
//! compiled for the baseline instruction set and as dispatched on this CPU, in the same
//! run, and prints nanoseconds per sample: the minimum of `runs` timings of each. Times are the thread's
//! CPU time, so that other processes sharing the core do not count.
//!
//! `cargo run --release -p mastering --features testutil --example kernel_bench [seconds (30)] [runs (5)]`
//! (pin it to one core for stable figures: `taskset -c 0 target/release/examples/kernel_bench`).
//!
//! The input is music-like: pink noise with a kick, 44.1 kHz, clipped at full scale.

use mastering::testutil::{Rng, kernels, pink_noise};
use std::hint::black_box;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args().nth(1).map_or(Ok(30.0), |s| s.parse())?;
    let runs: usize = std::env::args().nth(2).map_or(Ok(5), |s| s.parse())?;
    let rate = 44_100u32;
    let n = (secs * f64::from(rate)) as usize;
    let music = |seed: u64| -> Vec<f32> {
        let mut rng = Rng::new(seed);
        pink_noise(0.5, n, seed)
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let t = (i % 22_050) as f64 / 44_100.0;
                let kick = (-t * 25.0).exp() * (2.0 * std::f64::consts::PI * 55.0 * t).sin();
                let hat = 0.05 * rng.uniform();
                (f64::from(v) * 2.5 + 0.6 * kick + hat).clamp(-1.0, 1.0) as f32
            })
            .collect()
    };
    let l = music(1);
    println!(
        "kernel_bench: {secs} s of 44.1 kHz music-like audio, min of {runs} runs; dispatch: {}",
        mastering::simd::dispatched_isa()
    );
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "kernel", "baseline", "dispatched", "speedup"
    );
    // Baseline and dispatched alternately, each run timed by the thread's CPU time.
    let row = |name: &str, per: usize, f: &dyn Fn(bool)| {
        let (mut base, mut disp) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..runs {
            for (portable, best) in [(true, &mut base), (false, &mut disp)] {
                let start = cpu_seconds();
                f(portable);
                *best = best.min(cpu_seconds() - start);
            }
        }
        let ns = |s: f64| s * 1e9 / per as f64;
        println!(
            "{name:<44} {:>9.2} ns {:>9.2} ns {:>7.2}x",
            ns(base),
            ns(disp),
            base / disp
        );
    };
    row("ExactPeak::scan (every tile, per sample)", n, &|p| {
        black_box(kernels::exact_scan(black_box(&l), p));
    });
    row("interpolated_peak (meter, 4x, per sample)", n, &|p| {
        black_box(kernels::ebur128_interpolation(black_box(&l), rate, p));
    });
    row("Ebur128Style::raise (limiter, per sample)", n, &|p| {
        black_box(kernels::ebur128_raise(black_box(&l), rate, p).ok());
    });
    Ok(())
}

/// CPU time of this thread, seconds, so a shared core's other work is not counted.
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
