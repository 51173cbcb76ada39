//! End-to-end quality tests of the processing chain (docs/QUALITY.md §2), on generated signals:
//! DC → EQ → dynamics → width → gain → true-peak limiter.

use super::eq::{LinearPhaseEq, design_correction};
use super::limiter::TruePeakLimiter;
use super::spectrum::OctaveAnalyzer;
use super::styles::{BAND_CENTRES_HZ, StyleParams};
use super::test_signals::{
    TestRng, correlation, loudness_and_true_peak, loudness_range, music_like, run_stage,
    sectioned_music, sine, thd_n_percent,
};
use super::{Measured, build_stages, db_to_lin};
use crate::params::Style;
use crate::stage::BlockProcessor;
use proptest::prelude::*;
use realfft::RealFftPlanner;

/// How the gain before the limiter is chosen.
#[derive(Debug, Clone, Copy)]
enum GainMode {
    /// To the style's loudness target (what the chain does).
    ToTarget,
    /// So that the limiter input peaks this many dB over the ceiling (stress).
    IntoLimiter(f64),
}

/// Octave-band power, dB (arbitrary but fixed reference), at [`BAND_CENTRES_HZ`] below
/// Nyquist (Welch average, Hann, 8192 points, all channels summed).
fn octave_band_power(x: &[Vec<f32>], rate: u32) -> Vec<(f64, f64)> {
    let n = 8192;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut power = vec![0.0f64; n / 2 + 1];
    let mut input = vec![0.0f64; n];
    let mut out = fft.make_output_vec();
    for ch in x {
        let halves: Vec<&[f32]> = ch.chunks_exact(n / 2).collect();
        for frame in halves.windows(2) {
            for (i, v) in frame[0].iter().chain(frame[1]).enumerate() {
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
                input[i] = f64::from(*v) * w;
            }
            fft.process(&mut input, &mut out).unwrap();
            for (p, c) in power.iter_mut().zip(&out) {
                *p += c.norm_sqr();
            }
        }
    }
    let band = |hz: f64| {
        let (lo, hi) = (hz / 2f64.sqrt(), hz * 2f64.sqrt());
        power
            .iter()
            .enumerate()
            .filter(|(k, _)| {
                let f = *k as f64 * f64::from(rate) / n as f64;
                f >= lo && f < hi
            })
            .map(|(_, p)| p)
            .sum::<f64>()
    };
    BAND_CENTRES_HZ
        .iter()
        .filter(|&&hz| hz * 2f64.sqrt() < f64::from(rate) / 2.0)
        .map(|&hz| (hz, 10.0 * band(hz).log10()))
        .collect()
}

/// Octave-band power spectrum, dB re the 1 kHz band.
fn octave_bands(x: &[Vec<f32>], rate: u32) -> Vec<(f64, f64)> {
    let abs = octave_band_power(x, rate);
    let reference = abs.iter().find(|b| b.0 == 1000.0).map_or(0.0, |b| b.1);
    abs.iter().map(|&(hz, db)| (hz, db - reference)).collect()
}

/// What the analysis pass would measure: loudness (ebur128) and the octave analyser's
/// spectrum and stereo statistics.
fn measure(x: &[Vec<f32>], rate: u32) -> Measured {
    let (lufs, _) = loudness_and_true_peak(x, rate);
    let mut analyzer = OctaveAnalyzer::new(rate, x.len()).unwrap();
    analyzer.add(x);
    Measured::from_analyzer(lufs, &analyzer)
}

/// Runs the whole chain for `style` and returns the aligned output (latency removed) and
/// the limiter's deepest gain reduction.
fn master(
    x: &[Vec<f32>],
    rate: u32,
    style: Style,
    measured: &Measured,
    gain: GainMode,
    ceiling: f64,
) -> (Vec<Vec<f32>>, f64) {
    let mut stages = build_stages(style, rate, x.len(), measured).unwrap();
    let mut y = x.to_vec();
    for stage in &mut stages {
        y = run_stage(stage.as_mut(), &y, 8192, true);
        let lat = stage.latency();
        for ch in &mut y {
            ch.drain(..lat);
        }
    }
    let gain_db = match gain {
        GainMode::ToTarget => style.target_lufs() - loudness_and_true_peak(&y, rate).0,
        GainMode::IntoLimiter(over) => {
            let peak = y.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
            ceiling + over - 20.0 * f64::from(peak).log10()
        }
    };
    let g = db_to_lin(gain_db) as f32;
    for v in y.iter_mut().flatten() {
        *v *= g;
    }
    let params = StyleParams::of(style);
    let mut limiter =
        TruePeakLimiter::new(rate, x.len(), &params.limiter_settings(ceiling)).unwrap();
    let mut out = run_stage(&mut limiter, &y, 8192, true);
    for ch in &mut out {
        ch.drain(..limiter.latency());
    }
    (out, limiter.max_gain_reduction_db())
}

/// A "flat-ish" measurement: the tone's own loudness, a flat spectrum (so the EQ applies
/// half of the standard curve), no stereo statistics.
fn flat_measured(x: &[Vec<f32>], rate: u32) -> Measured {
    Measured {
        integrated_lufs: loudness_and_true_peak(x, rate).0,
        spectrum: BAND_CENTRES_HZ.iter().map(|&hz| (hz, 0.0)).collect(),
        band_stereo: vec![],
    }
}

#[test]
fn thd_n_of_sines_through_the_default_chain_is_below_one_percent() {
    let rate = 44_100;
    let secs = 6;
    let mut worst = 0.0f64;
    for hz in [1000.0, 50.0] {
        for dbfs in [-20.0, -12.0, -6.0, -1.0] {
            // drive: how far the tone sits above the programme loudness the compressor is
            // told about (0 = the tone is the programme; 8 = a loud passage, compressed
            // by about 2.7 dB with the standard style's 1.5:1 above +2 LU).
            for (mode, drive) in [
                (GainMode::ToTarget, 0.0),
                (GainMode::ToTarget, 8.0),
                (GainMode::IntoLimiter(3.0), 0.0),
                (GainMode::IntoLimiter(3.0), 8.0),
            ] {
                let tone = sine(hz, db_to_lin(dbfs), rate, secs * rate as usize);
                let x = vec![tone.clone(), tone];
                let mut measured = flat_measured(&x, rate);
                measured.integrated_lufs -= drive;
                let (y, gr) = master(&x, rate, Style::Standard, &measured, mode, -1.0);
                // Skip 3 s of settling (compressor attack/release, limiter release) and stop
                // 1 s before the end (the linear-phase EQ pre-rings before the tone stops).
                let settled = &y[0][3 * rate as usize..5 * rate as usize];
                let thd = thd_n_percent(settled, hz, rate);
                let (_, tp) = loudness_and_true_peak(&y, rate);
                println!(
                    "THD+N {hz:>6} Hz {dbfs:>5} dBFS drive {drive} LU {mode:<18?}: {thd:.4} % \
                     (limiter GR {gr:.2} dB, out TP {tp:.2} dBTP)"
                );
                assert!(
                    thd < 1.0,
                    "{hz} Hz at {dbfs} dBFS ({mode:?}): THD+N {thd:.3} %"
                );
                assert!(tp <= -1.0);
                worst = worst.max(thd);
            }
        }
    }
    println!("worst THD+N: {worst:.4} %");
}

#[test]
fn styles_with_unit_width_keep_stereo_correlation() {
    let rate = 44_100;
    for seed in [21, 22, 23] {
        let x = music_like(seed, rate, rate as usize * 8, 2, 0.5);
        let measured = measure(&x, rate);
        let before = correlation(&x[0], &x[1]);
        for style in Style::ALL {
            let (y, _) = master(&x, rate, style, &measured, GainMode::ToTarget, -1.0);
            let after = correlation(&y[0], &y[1]);
            println!("seed {seed} {style}: correlation {before:.3} → {after:.3}");
            if StyleParams::of(style).width == 1.0 {
                assert!(
                    (after - before).abs() <= 0.05,
                    "{style}: {before:.3} → {after:.3}"
                );
            } else {
                // Wider highs and mono lows pull in opposite directions; stay sane.
                assert!(
                    (after - before).abs() <= 0.25,
                    "{style}: {before:.3} → {after:.3}"
                );
            }
        }
    }
}

#[test]
fn gentle_styles_keep_most_of_the_loudness_range() {
    let rate = 48_000;
    // 10 s sections at 0, -12, -4, -16, 0 dB: an input LRA of roughly 15 LU.
    let x = sectioned_music(rate, &[0.0, -12.0, -4.0, -16.0, 0.0]);
    let lra_in = loudness_range(&x, rate);
    let measured = measure(&x, rate);
    for style in Style::ALL {
        let (y, _) = master(&x, rate, style, &measured, GainMode::ToTarget, -1.0);
        let lra_out = loudness_range(&y, rate);
        let kept = lra_out / lra_in;
        println!(
            "{style}: LRA {lra_in:.1} → {lra_out:.1} LU ({:.0} % kept)",
            kept * 100.0
        );
        if matches!(style, Style::Classical | Style::Podcast) {
            assert!(
                kept >= 0.7,
                "{style} kept only {:.0} % of LRA",
                kept * 100.0
            );
        }
    }
}

#[test]
fn spectrum_moves_toward_the_target_within_six_db() {
    let rate = 44_100;
    // White noise: octave-band power rises 3 dB per octave (far too bright for any style).
    let mut rng = TestRng::new(99);
    let x: Vec<Vec<f32>> = (0..2)
        .map(|_| {
            (0..rate as usize * 6)
                .map(|_| (0.2 * rng.bipolar()) as f32)
                .collect()
        })
        .collect();
    let before = octave_bands(&x, rate);
    let measured = measure(&x, rate);
    for style in Style::ALL {
        let (y, _) = master(&x, rate, style, &measured, GainMode::ToTarget, -1.0);
        let after = octave_bands(&y, rate);
        let target = StyleParams::of(style).target_curve();
        let distance = |s: &[(f64, f64)]| -> f64 {
            s.iter()
                .zip(&target)
                .map(|(m, t)| (m.1 - t.1).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let (d_in, d_out) = (distance(&before), distance(&after));
        println!("{style}: distance to target {d_in:.1} → {d_out:.1} dB");
        assert!(d_out < d_in, "{style}: moved away from the target");
        for (b, a) in before.iter().zip(&after) {
            let change = a.1 - b.1;
            // The EQ's 6 dB bound plus 0.2 dB for the compressor (its gain changes with the
            // programme) and the measurement.
            assert!(
                change.abs() <= 6.2,
                "{style} {} Hz moved {change:.2} dB",
                b.0
            );
        }
        // The EQ alone, in absolute band power: within ±6 dB (+0.05 dB measurement).
        let params = StyleParams::of(style);
        let correction = design_correction(
            &measured.spectrum,
            &params.target_curve(),
            params.eq_amount,
            6.0,
        )
        .unwrap();
        let mut eq = LinearPhaseEq::new(rate, 2, &correction).unwrap();
        let mut z = run_stage(&mut eq, &x, 8192, true);
        for ch in &mut z {
            ch.drain(..eq.latency());
        }
        for (b, a) in octave_band_power(&x, rate)
            .iter()
            .zip(octave_band_power(&z, rate))
        {
            let change = a.1 - b.1;
            assert!(
                change.abs() <= 6.05,
                "{style} EQ alone moved {} Hz by {change:.2} dB",
                b.0
            );
        }
    }
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(96))]

    /// The limiter's guarantee over music-like signals: sums of sines, filtered noise and
    /// transients, peaks from -6 to +12 dBFS, ceilings from -9 to 0 dBTP, several rates.
    #[test]
    fn limiter_true_peak_never_exceeds_the_ceiling(
        seed in any::<u64>(),
        level_db in -6.0f64..12.0,
        ceiling in -9.0f64..0.0,
        rate in prop::sample::select(vec![22_050u32, 44_100, 48_000, 96_000]),
        channels in 1usize..=2,
    ) {
        let x = music_like(seed, rate, rate as usize, channels, db_to_lin(level_db));
        let mut limiter = TruePeakLimiter::new(
            rate,
            channels,
            &super::limiter::LimiterSettings::with_ceiling(ceiling),
        ).unwrap();
        let y = run_stage(&mut limiter, &x, 1024, true);
        let (_, tp) = loudness_and_true_peak(&y, rate);
        prop_assert!(tp <= ceiling, "true peak {tp:.4} dBTP > ceiling {ceiling:.4}");
        prop_assert!(y.iter().flatten().all(|v| v.abs() < 1.0), "no sample at full scale");
    }
}

#[test]
fn chain_is_deterministic_and_block_size_independent() {
    let rate = 48_000;
    let x = music_like(77, rate, rate as usize * 3, 2, 0.8);
    let measured = measure(&x, rate);
    let run = |block: usize| {
        let mut stages = build_stages(Style::HouseBasic, rate, 2, &measured).unwrap();
        stages.push(Box::new(
            TruePeakLimiter::new(
                rate,
                2,
                &StyleParams::of(Style::HouseBasic).limiter_settings(-1.0),
            )
            .unwrap(),
        ));
        let mut y = x.clone();
        for stage in &mut stages {
            y = run_stage(stage.as_mut(), &y, block, true);
        }
        y
    };
    let a = run(4096);
    assert_eq!(
        a,
        run(4096),
        "same input and parameters must give identical output"
    );
    let b = run(1000);
    let diff: f64 = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(p, q)| f64::from(p - q).powi(2))
        .sum();
    let energy: f64 = a.iter().flatten().map(|&p| f64::from(p).powi(2)).sum();
    let db = 10.0 * (diff / energy).log10();
    println!("block 4096 vs 1000: difference {db:.1} dB");
    assert!(db < -100.0, "block size changed the output by {db:.1} dB");
}

#[test]
fn surround_input_is_processed_and_limited() {
    let rate = 48_000;
    let x = music_like(8, rate, rate as usize * 2, 6, 3.0);
    let measured = measure(&x, rate);
    assert!(measured.band_stereo.is_empty());
    let (y, gr) = master(
        &x,
        rate,
        Style::Edm,
        &measured,
        GainMode::IntoLimiter(4.0),
        -1.0,
    );
    assert_eq!(y.len(), 6);
    let (_, tp) = loudness_and_true_peak(&y, rate);
    assert!(
        tp <= -1.0 && gr > 3.0,
        "5.1: true peak {tp:.2} dBTP, GR {gr:.2} dB"
    );
}
