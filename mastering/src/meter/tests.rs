//! EBU Tech 3341 / 3342 conformance, signals generated from their definitions.
use super::*;
use crate::testutil::{db_to_amp, sine};

/// A stereo tone programme: (seconds, dBFS per channel) segments of a 1 kHz sine.
fn tone_segments(rate: u32, segments: &[(f64, f64)]) -> Vec<f32> {
    let mut out = Vec::new();
    for &(secs, db) in segments {
        let n = (secs * f64::from(rate)).round() as usize;
        out.extend(sine(1000.0, db_to_amp(db), rate, n));
    }
    out
}

fn measure(planes: &[Vec<f32>], rate: u32, mode: MeterMode) -> LoudnessMeter {
    let mut m = LoudnessMeter::new(planes.len(), rate, mode).unwrap();
    // Feed in uneven blocks to exercise block boundaries.
    let n = planes[0].len();
    let mut start = 0;
    while start < n {
        let end = (start + 3001).min(n);
        let block: Vec<&[f32]> = planes.iter().map(|p| &p[start..end]).collect();
        m.add_block(&block).unwrap();
        start = end;
    }
    m
}

fn stereo(x: Vec<f32>) -> Vec<Vec<f32>> {
    vec![x.clone(), x]
}

fn assert_near(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.3}, want {want} ± {tol}"
    );
}

const RATES: [u32; 2] = [48_000, 44_100];

/// A named programme of tone segments and the value it must read.
type Case = (&'static str, Vec<(f64, f64)>, f64);

#[test]
fn tech3341_cases_1_to_5_integrated() {
    let cases: [(&str, Vec<(f64, f64)>); 5] = [
        ("3341-1", vec![(20.0, -23.0)]),
        ("3341-2", vec![(20.0, -33.0)]),
        ("3341-3", vec![(10.0, -36.0), (60.0, -23.0), (10.0, -36.0)]),
        (
            "3341-4",
            vec![
                (10.0, -72.0),
                (10.0, -36.0),
                (60.0, -23.0),
                (10.0, -36.0),
                (10.0, -72.0),
            ],
        ),
        ("3341-5", vec![(20.0, -26.0), (20.1, -20.0), (20.0, -26.0)]),
    ];
    for rate in RATES {
        for (name, segments) in &cases {
            let want = if *name == "3341-2" { -33.0 } else { -23.0 };
            let m = measure(
                &stereo(tone_segments(rate, segments)),
                rate,
                MeterMode::INTEGRATED,
            );
            assert_near(m.integrated(), want, 0.1, &format!("{name} at {rate} Hz"));
        }
    }
}

#[test]
fn tech3341_case_6_five_channels() {
    for rate in RATES {
        let n = 20 * rate as usize;
        let planes = vec![
            sine(1000.0, db_to_amp(-28.0), rate, n),
            sine(1000.0, db_to_amp(-28.0), rate, n),
            sine(1000.0, db_to_amp(-24.0), rate, n),
            sine(1000.0, db_to_amp(-30.0), rate, n),
            sine(1000.0, db_to_amp(-30.0), rate, n),
        ];
        let m = measure(&planes, rate, MeterMode::INTEGRATED);
        assert_near(m.integrated(), -23.0, 0.1, &format!("3341-6 at {rate} Hz"));
    }
}

/// Feeds `signal` in 10 ms steps and checks `read` after `settle` seconds at every step.
fn check_running(
    signal: &[f32],
    rate: u32,
    settle: f64,
    read: fn(&LoudnessMeter) -> f64,
    what: &str,
) {
    let planes = stereo(signal.to_vec());
    let mut m = LoudnessMeter::new(2, rate, MeterMode::INTEGRATED).unwrap();
    let step = rate as usize / 100;
    let mut checked = 0;
    for start in (0..signal.len()).step_by(step) {
        let end = (start + step).min(signal.len());
        m.add_block(&[&planes[0][start..end], &planes[1][start..end]])
            .unwrap();
        if m.seconds() >= settle {
            assert_near(
                read(&m),
                -23.0,
                0.1,
                &format!("{what} at {:.2} s", m.seconds()),
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{what}: only {checked} readings");
}

#[test]
fn tech3341_case_9_short_term() {
    for rate in RATES {
        let segs: Vec<(f64, f64)> = (0..5)
            .flat_map(|_| [(1.34, -20.0), (1.66, -30.0)])
            .collect();
        let sig = tone_segments(rate, &segs);
        check_running(
            &sig,
            rate,
            3.0,
            LoudnessMeter::short_term,
            &format!("3341-9 {rate} Hz"),
        );
    }
}

#[test]
fn tech3341_case_12_momentary() {
    for rate in RATES {
        let segs: Vec<(f64, f64)> = (0..25)
            .flat_map(|_| [(0.18, -20.0), (0.22, -30.0)])
            .collect();
        let sig = tone_segments(rate, &segs);
        check_running(
            &sig,
            rate,
            1.0,
            LoudnessMeter::momentary,
            &format!("3341-12 {rate} Hz"),
        );
    }
}

#[test]
fn tech3341_cases_15_to_19_true_peak() {
    let rate = 48_000u32;
    let fs = f64::from(rate);
    let cases = [
        ("3341-15", fs / 4.0, 0.0, 0.5, -6.0),
        ("3341-16", fs / 4.0, 45.0, 0.5, -6.0),
        ("3341-17", fs / 6.0, 60.0, 0.5, -6.0),
        ("3341-18", fs / 8.0, 67.5, 0.5, -6.0),
        ("3341-19", fs / 4.0, 45.0, 1.41, 3.0),
    ];
    for (name, freq, phase_deg, amp, want) in cases {
        let phase = f64::to_radians(phase_deg);
        // A 20 ms raised-cosine fade-in: a sine switched on abruptly is a step, whose
        // band-limited reconstruction really does overshoot (+0.3 dB for case 17), which is
        // not what these cases measure. The steady part is the definition's signal.
        let fade = rate as f64 * 0.02;
        let x: Vec<f32> = (0..rate as usize)
            .map(|n| {
                let g = if (n as f64) < fade {
                    0.5 - 0.5 * (std::f64::consts::PI * n as f64 / fade).cos()
                } else {
                    1.0
                };
                (g * amp * (2.0 * std::f64::consts::PI * freq * n as f64 / fs + phase).sin()) as f32
            })
            .collect();
        let m = measure(&stereo(x), rate, MeterMode::INTEGRATED_TRUE_PEAK);
        let tp = m.true_peak_db();
        assert!(
            tp <= want + 0.2 && tp >= want - 0.4,
            "{name}: true peak {tp:.3}, want {want} +0.2/-0.4"
        );
    }
}

#[test]
fn tech3342_loudness_range() {
    let cases: [Case; 4] = [
        ("3342-1", vec![(20.0, -20.0), (20.0, -30.0)], 10.0),
        ("3342-2", vec![(20.0, -20.0), (20.0, -15.0)], 5.0),
        ("3342-3", vec![(20.0, -40.0), (20.0, -20.0)], 20.0),
        (
            "3342-4",
            vec![
                (20.0, -50.0),
                (20.0, -35.0),
                (20.0, -20.0),
                (20.0, -35.0),
                (20.0, -50.0),
            ],
            15.0,
        ),
    ];
    for rate in RATES {
        for (name, segments, want) in &cases {
            let m = measure(
                &stereo(tone_segments(rate, segments)),
                rate,
                MeterMode::FULL,
            );
            assert_near(m.lra(), *want, 1.0, &format!("{name} at {rate} Hz"));
        }
    }
}

#[test]
fn mono_tone_reads_three_lu_below_stereo() {
    let rate = 48_000;
    let x = tone_segments(rate, &[(10.0, -23.0)]);
    let mono = measure(std::slice::from_ref(&x), rate, MeterMode::INTEGRATED);
    assert_near(mono.integrated(), -26.0, 0.1, "mono -23 dBFS tone");
    let st = measure(&stereo(x), rate, MeterMode::INTEGRATED);
    assert_near(st.integrated(), -23.0, 0.1, "stereo -23 dBFS tone");
}

#[test]
fn silence_reads_the_floor_and_peaks_are_reported() {
    let m = measure(&stereo(vec![0.0; 48_000 * 2]), 48_000, MeterMode::FULL);
    assert_eq!(m.integrated(), FLOOR_DB);
    assert_eq!(m.true_peak_db(), FLOOR_DB);
    assert_eq!(m.lra(), 0.0);
    let m = measure(
        &stereo(tone_segments(48_000, &[(1.0, -6.0)])),
        48_000,
        MeterMode::INTEGRATED,
    );
    assert_near(m.sample_peak_db(), -6.0, 0.01, "sample peak");
    // Without true peak, the true peak falls back to the sample peak.
    assert_eq!(m.true_peak_db(), m.sample_peak_db());
}

mod fast_meter {
    use super::*;
    use crate::testutil::{pink_noise, white_noise};

    fn fast(planes: &[Vec<f32>], rate: u32, mode: MeterMode) -> FastMeter {
        let mut m = FastMeter::new(planes.len(), rate, mode).unwrap();
        let n = planes[0].len();
        let mut start = 0;
        while start < n {
            let end = (start + 1777).min(n);
            let block: Vec<&[f32]> = planes.iter().map(|p| &p[start..end]).collect();
            m.add_block(&block).unwrap();
            start = end;
        }
        m
    }

    #[test]
    fn passes_the_integrated_and_lra_cases() {
        for rate in RATES {
            for (segs, want) in [
                (vec![(20.0, -23.0)], -23.0),
                (vec![(20.0, -33.0)], -33.0),
                (vec![(10.0, -36.0), (60.0, -23.0), (10.0, -36.0)], -23.0),
                (
                    vec![
                        (10.0, -72.0),
                        (10.0, -36.0),
                        (60.0, -23.0),
                        (10.0, -36.0),
                        (10.0, -72.0),
                    ],
                    -23.0,
                ),
                (vec![(20.0, -26.0), (20.1, -20.0), (20.0, -26.0)], -23.0),
            ] {
                let m = fast(
                    &stereo(tone_segments(rate, &segs)),
                    rate,
                    MeterMode::INTEGRATED,
                );
                assert_near(m.integrated(), want, 0.1, &format!("{segs:?} at {rate}"));
            }
            let n = 20 * rate as usize;
            let five: Vec<Vec<f32>> = [-28.0, -28.0, -24.0, -30.0, -30.0]
                .iter()
                .map(|&db| sine(1000.0, db_to_amp(db), rate, n))
                .collect();
            assert_near(
                fast(&five, rate, MeterMode::INTEGRATED).integrated(),
                -23.0,
                0.1,
                "3341-6",
            );
            for (segs, want) in [
                (vec![(20.0, -20.0), (20.0, -30.0)], 10.0),
                (vec![(20.0, -20.0), (20.0, -15.0)], 5.0),
                (vec![(20.0, -40.0), (20.0, -20.0)], 20.0),
                (
                    vec![
                        (20.0, -50.0),
                        (20.0, -35.0),
                        (20.0, -20.0),
                        (20.0, -35.0),
                        (20.0, -50.0),
                    ],
                    15.0,
                ),
            ] {
                let m = fast(&stereo(tone_segments(rate, &segs)), rate, MeterMode::FULL);
                assert_near(m.lra(), want, 1.0, &format!("LRA {segs:?} at {rate}"));
            }
        }
    }

    #[test]
    fn passes_the_true_peak_cases() {
        let rate = 48_000u32;
        let fs = f64::from(rate);
        for (freq, phase_deg, amp, want) in [
            (fs / 4.0, 0.0, 0.5, -6.0),
            (fs / 4.0, 45.0, 0.5, -6.0),
            (fs / 6.0, 60.0, 0.5, -6.0),
            (fs / 8.0, 67.5, 0.5, -6.0),
            (fs / 4.0, 45.0, 1.41, 3.0),
        ] {
            let fade = fs * 0.02;
            let x: Vec<f32> = (0..rate as usize)
                .map(|n| {
                    let g = (n as f64 / fade).min(1.0);
                    let g = 0.5 - 0.5 * (std::f64::consts::PI * g).cos();
                    let ph = 2.0 * std::f64::consts::PI * freq * n as f64 / fs
                        + f64::to_radians(phase_deg);
                    (g * amp * ph.sin()) as f32
                })
                .collect();
            let tp = fast(&stereo(x), rate, MeterMode::INTEGRATED_TRUE_PEAK).true_peak_db();
            assert!(
                tp <= want + 0.2 && tp >= want - 0.4,
                "{freq} Hz {phase_deg}°: {tp:.3}"
            );
        }
    }

    /// Noise bursts with a slow envelope: loudness varies, true peaks between samples.
    fn programme(rate: u32, channels: usize, secs: f64, seed: u64) -> Vec<Vec<f32>> {
        let n = (f64::from(rate) * secs) as usize;
        (0..channels)
            .map(|c| {
                let p = pink_noise(0.6, n, seed + c as u64);
                let w = white_noise(0.2, n, seed + 100 + c as u64);
                p.iter()
                    .zip(&w)
                    .enumerate()
                    .map(|(i, (a, b))| {
                        let t = i as f64 / f64::from(rate);
                        let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 0.13 * t).sin();
                        ((f64::from(*a) + f64::from(*b)) * env) as f32
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_ebur128_crate() {
        for (rate, channels) in [
            (44_100u32, 2usize),
            (48_000, 1),
            (96_000, 2),
            (48_000, 6),
            (22_050, 5),
        ] {
            let sig = programme(rate, channels, 30.0, rate as u64 + channels as u64);
            let reference = measure(&sig, rate, MeterMode::FULL).loudness();
            let ours = fast(&sig, rate, MeterMode::FULL).loudness();
            let what = format!("{channels} ch at {rate} Hz");
            assert_near(
                ours.lufs,
                reference.lufs,
                0.01,
                &format!("{what} integrated"),
            );
            // True peak: the larger of the exact reading and the ebur128-style one, so
            // never below the ebur128 crate's reading, and within 0.05 dB of the exact
            // reference meter when the ebur128 crate reads lower (its 4× interpolator reads
            // up to 5 dB low near Nyquist, and this programme has white noise up there).
            let exact = crate::testutil::reference_peak::reference_true_peak(&sig).dbtp();
            println!(
                "{what}: true peak {:.3}, ebur128 crate {:.3}, reference {exact:.3}",
                ours.true_peak_db, reference.true_peak_db
            );
            assert!(
                ours.true_peak_db >= reference.true_peak_db - 0.01,
                "{what}: true peak {:.3} below the ebur128 crate's {:.3}",
                ours.true_peak_db,
                reference.true_peak_db
            );
            assert_near(
                ours.true_peak_db,
                exact.max(reference.true_peak_db),
                0.05,
                &format!("{what} true peak"),
            );
            assert_near(
                ours.sample_peak_db,
                reference.sample_peak_db,
                1e-6,
                &format!("{what} sample peak"),
            );
            // Short-term steps differ (100 ms here, 1 s in ebur128): LRA agrees loosely.
            assert_near(ours.lra, reference.lra, 0.5, &format!("{what} LRA"));
        }
    }
}
