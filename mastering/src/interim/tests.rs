use super::*;
use crate::meter::LoudnessMeter;
use crate::params::Style;
use crate::testutil::*;
use std::sync::atomic::Ordering;

fn params(target: f64, format: OutputFormat) -> MasterParams {
    MasterParams::new(Style::Standard, Some(target), Some(-1.0), format).unwrap()
}

fn master(input: &Path, output: &Path, p: &MasterParams) -> Result<MasterReport, MasterError> {
    let cancel = AtomicBool::new(false);
    master_file_interim(input, output, p, &mut |_| {}, &cancel)
}

/// Measures a file independently of the chain's own report.
fn measure(path: &Path) -> crate::report::Loudness {
    let (planes, rate) = decode_all(path);
    let mut m = LoudnessMeter::new(planes.len(), rate, MeterMode::FULL).unwrap();
    m.add_block(&planes).unwrap();
    m.loudness()
}

fn music_like(rate: u32, secs: f64, amp: f64) -> Vec<Vec<f32>> {
    let n = (f64::from(rate) * secs) as usize;
    let a = pink_noise(amp, n, 11);
    let b = pink_noise(amp, n, 12);
    // Partly correlated stereo.
    let l: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 0.8 * x + 0.2 * y).collect();
    let r: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 0.2 * x + 0.8 * y).collect();
    vec![l, r]
}

#[test]
fn reaches_the_target_when_the_peaks_allow_it() {
    let dir = temp_dir();
    let input = path_in(&dir, "in.wav");
    // Quiet, low-crest input: the gain needed is far from the ceiling.
    write_wav(
        &input,
        &music_like(44_100, 8.0, 0.05),
        44_100,
        WavKind::Int(16),
    );
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 24 },
    ] {
        let output = path_in(&dir, &format!("out.{}", format.extension()));
        let p = params(-20.0, format);
        let report = master(&input, &output, &p).unwrap();
        let got = measure(&output);
        assert!(
            (got.lufs + 20.0).abs() <= 0.1,
            "{format:?}: {} LUFS",
            got.lufs
        );
        assert!(
            (report.after.lufs - got.lufs).abs() < 1e-9,
            "report tells the truth"
        );
        assert!(got.true_peak_db <= -1.0, "true peak {}", got.true_peak_db);
        assert!(report.before.lufs < -30.0);
        assert_eq!((report.sample_rate, report.channels), (44_100, 2));
        assert!((report.duration_sec - 8.0).abs() < 1e-6);
    }
}

#[test]
fn never_passes_the_ceiling_even_with_float_overs() {
    let dir = temp_dir();
    let input = path_in(&dir, "overs.wav");
    let mut sig = music_like(48_000, 5.0, 0.9);
    for (i, s) in sig[0].iter_mut().enumerate().step_by(9973) {
        *s = if i % 2 == 0 { 1.6 } else { -1.4 };
    }
    write_wav(&input, &sig, 48_000, WavKind::Float);
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ] {
        let output = path_in(&dir, &format!("o.{}", format.extension()));
        let report = master(&input, &output, &params(-9.0, format)).unwrap();
        let got = measure(&output);
        assert!(
            got.true_peak_db <= -1.0,
            "{format:?}: {} dBTP",
            got.true_peak_db
        );
        assert!(report.before.true_peak_db > 3.0);
        // The interim chain does not limit: the target is not reached, and says so.
        assert!(report.after.lufs < -9.0);
    }
}

#[test]
fn short_and_silent_inputs_are_refused_clearly() {
    let dir = temp_dir();
    let out = path_in(&dir, "o.wav");
    let p = params(-14.0, OutputFormat::Wav { bit_depth: 16 });

    let short = path_in(&dir, "short.wav");
    write_wav(
        &short,
        &music_like(44_100, 0.5, 0.3),
        44_100,
        WavKind::Int(16),
    );
    let err = master(&short, &out, &p).unwrap_err();
    assert!(matches!(err, MasterError::TooShort(_)), "{err:?}");
    assert!(err.to_string().contains("0.50 s"), "{err}");
    assert!(!out.exists(), "no output on failure");

    let silent = path_in(&dir, "silent.wav");
    write_wav(
        &silent,
        &[vec![0.0; 44_100 * 5], vec![0.0; 44_100 * 5]],
        44_100,
        WavKind::Int(16),
    );
    assert!(matches!(
        master(&silent, &out, &p),
        Err(MasterError::Silent(_))
    ));

    let hiss = path_in(&dir, "hiss.wav");
    write_wav(
        &hiss,
        &[white_noise(1e-4, 44_100 * 5, 9)],
        44_100,
        WavKind::Float,
    );
    assert!(matches!(
        master(&hiss, &out, &p),
        Err(MasterError::Silent(_))
    ));
}

#[test]
fn progress_is_monotonic_and_cancel_stops_and_cleans_up() {
    let dir = temp_dir();
    let input = path_in(&dir, "in.wav");
    write_wav(
        &input,
        &music_like(44_100, 6.0, 0.1),
        44_100,
        WavKind::Int(16),
    );
    let output = path_in(&dir, "o.wav");
    let p = params(-14.0, OutputFormat::Wav { bit_depth: 16 });

    let mut seen = Vec::new();
    let cancel = AtomicBool::new(false);
    let report =
        master_file_interim(&input, &output, &p, &mut |pr| seen.push(pr), &cancel).unwrap();
    assert!(seen.len() > 10);
    assert!(seen.windows(2).all(|w| w[1].fraction >= w[0].fraction));
    assert_eq!(seen.last().unwrap().fraction, 1.0);
    assert!(seen.iter().any(|p| p.stage == Stage::Encode));
    let labels: Vec<&str> = report
        .stage_seconds
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(labels, ["analysis", "encode", "measure_output"]);

    std::fs::remove_file(&output).unwrap();
    let cancel = AtomicBool::new(false);
    let mut calls = 0;
    let err = master_file_interim(
        &input,
        &output,
        &p,
        &mut |pr| {
            calls += 1;
            if pr.stage == Stage::Encode && pr.fraction > 0.5 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, MasterError::Cancelled));
    assert!(!err.is_permanent());
    assert!(!output.exists());
}

#[test]
fn same_input_gives_byte_identical_output() {
    let dir = temp_dir();
    let input = path_in(&dir, "in.wav");
    write_wav(
        &input,
        &music_like(44_100, 4.0, 0.2),
        44_100,
        WavKind::Int(24),
    );
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 256 },
    ] {
        let a = path_in(&dir, &format!("a.{}", format.extension()));
        let b = path_in(&dir, &format!("b.{}", format.extension()));
        master(&input, &a, &params(-14.0, format)).unwrap();
        master(&input, &b, &params(-14.0, format)).unwrap();
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{format:?}"
        );
    }
}
