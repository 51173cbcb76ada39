//! Chain-level quality proofs (docs/QUALITY.md §2) through [`crate::master_file`], each measured
//! on the decoded output file: loudness and true peak by the reference meter
//! ([`crate::meter::LoudnessMeter`], ebur128 crate), THD+N by the validated least-squares
//! meter, spectrum by the crate's one [`OctaveAnalyzer`].

use super::tests::independent_planes;
use crate::dsp::db_to_lin;
use crate::dsp::spectrum::OctaveAnalyzer;
use crate::dsp::styles::StyleParams;
use crate::dsp::test_signals::{
    correlation, loudness_range, music_like, sectioned_music, sine, thd_n_percent,
};
use crate::params::{MasterParams, OutputFormat, Style};
use crate::report::MasterReport;
use crate::testutil::{WavKind, decode_all, path_in, temp_dir, wav_in, white_noise, write_wav};
use proptest::prelude::*;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Every output format the service offers, at both MP3 ends.
const FORMATS: [OutputFormat; 6] = [
    OutputFormat::Wav { bit_depth: 16 },
    OutputFormat::Wav { bit_depth: 24 },
    OutputFormat::Flac { bit_depth: 16 },
    OutputFormat::Flac { bit_depth: 24 },
    OutputFormat::Mp3 { bitrate_kbps: 128 },
    OutputFormat::Mp3 { bitrate_kbps: 320 },
];

/// Masters `input` into `output` through the public entry point.
fn master(input: &Path, output: &Path, p: &MasterParams) -> MasterReport {
    crate::master_file(input, output, p, &mut |_| {}, &AtomicBool::new(false))
        .unwrap_or_else(|e| panic!("master {:?} {:?}: {e}", p.style, p.format))
}

/// Style defaults (target, -1 dBTP) into `format`.
fn default_params(style: Style, format: OutputFormat) -> MasterParams {
    MasterParams::new(style, None, None, format).expect("valid params")
}

/// A stereo music-like signal with L/R correlation of about `1 / (1 + side²)`: a common
/// part plus an independent part per channel, peak `peak` (linear).
fn partly_correlated(seed: u64, rate: u32, frames: usize, side: f64, peak: f64) -> Vec<Vec<f32>> {
    let common = music_like(seed, rate, frames, 1, 1.0).remove(0);
    let left = music_like(seed ^ 0x0005_eed1, rate, frames, 1, 1.0).remove(0);
    let right = music_like(seed ^ 0x0005_eed2, rate, frames, 1, 1.0).remove(0);
    let side = side as f32;
    let mut x: Vec<Vec<f32>> = vec![
        common
            .iter()
            .zip(&left)
            .map(|(c, l)| c + side * l)
            .collect(),
        common
            .iter()
            .zip(&right)
            .map(|(c, r)| c + side * r)
            .collect(),
    ];
    let max = x
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-9);
    let g = (peak / f64::from(max)) as f32;
    for v in x.iter_mut().flatten() {
        *v *= g;
    }
    x
}

/// Octave spectrum (dB re 1 kHz) of planes by the crate's one analyser.
fn octave_spectrum(planes: &[Vec<f32>], rate: u32) -> Vec<(f64, f64)> {
    let mut analyzer = OctaveAnalyzer::new(rate, planes.len()).expect("analyser");
    analyzer.add(planes);
    analyzer.finish();
    analyzer.spectrum_db()
}

/// Masters `input` in `style` with the default settings into a 24-bit WAV in `dir` and
/// returns the decoded output.
fn master_to_wav24(input: &Path, dir: &tempfile::TempDir, style: Style) -> Vec<Vec<f32>> {
    let output = path_in(dir, "out.wav");
    master(
        input,
        &output,
        &default_params(style, OutputFormat::Wav { bit_depth: 24 }),
    );
    decode_all(&output).0
}

/// Checks the delivery bounds on the decoded output; returns (I, TP) for the log.
fn check_delivered(output: &Path, p: &MasterParams) -> Result<(f64, f64), TestCaseError> {
    let (planes, rate) = decode_all(output);
    let (got, clipped) = independent_planes(&planes, rate);
    let what = format!(
        "{} {:?} target {:.2} ceiling {:.2}",
        p.style.name(),
        p.format,
        p.target_lufs,
        p.true_peak_db
    );
    prop_assert!(
        (got.lufs - p.target_lufs).abs() <= 0.1,
        "{what}: {:.3} LUFS",
        got.lufs
    );
    prop_assert!(
        got.true_peak_db <= p.true_peak_db,
        "{what}: true peak {:.3} dBTP",
        got.true_peak_db
    );
    prop_assert_eq!(clipped, 0, "{}: samples at full scale", what);
    let sixteen_bit = matches!(
        p.format,
        OutputFormat::Wav { bit_depth: 16 } | OutputFormat::Flac { bit_depth: 16 }
    );
    if sixteen_bit {
        // ±32767/32768 is 16-bit full scale.
        let at_full_scale = planes
            .iter()
            .flatten()
            .filter(|s| s.abs() >= 32767.0 / 32768.0)
            .count();
        prop_assert_eq!(at_full_scale, 0, "{}: 16-bit samples at ±32767", what);
    }
    Ok((got.lufs, got.true_peak_db))
}

/// One random input per style × format combination.
type Case = (u64, f64, f64, f64);

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        -30.0f64..0.0, // input peak, dBFS
        0.0f64..1.0,   // target, as a fraction of its reachable range
        -9.0f64..0.0,  // ceiling, dBTP
    )
}

proptest! {
    #![proptest_config(crate::testutil::proptest_config(1))]

    /// Every style meets every output format on a random 8 s music-like input at a random
    /// level, target and ceiling: |I − target| ≤ 0.1 LU, TP ≤ ceiling, no full-scale
    /// sample. The target is drawn from -30 LUFS up to -5 LUFS or `ceiling − 4` dB,
    /// whichever is lower: a PLR under 4 dB is out of reach (the chain then warns, see
    /// `chain::tests::an_unreachable_target_is_delivered_with_a_warning`).
    #[test]
    fn every_style_meets_every_format(
        cases in prop::collection::vec(case(), Style::ALL.len() * FORMATS.len()),
    ) {
        let rate = 44_100;
        let dir = temp_dir();
        let combos = Style::ALL.iter().flat_map(|&s| FORMATS.iter().map(move |&f| (s, f)));
        for ((style, format), (seed, peak_db, target_frac, ceiling)) in combos.zip(cases) {
            let highest = (-5.0f64).min(ceiling - 4.0);
            let target = -30.0 + target_frac * (highest + 30.0);
            let input = path_in(&dir, "in.wav");
            let x = music_like(seed, rate, rate as usize * 8, 2, db_to_lin(peak_db));
            write_wav(&input, &x, rate, WavKind::Float);
            let output = path_in(&dir, &format!("out.{}", format.extension()));
            let p = MasterParams::new(style, Some(target), Some(ceiling), format)
                .expect("valid params");
            master(&input, &output, &p);
            let (lufs, tp) = check_delivered(&output, &p)?;
            println!(
                "{:<12} {:<28} in {peak_db:>6.1} dBFS → {lufs:>7.2} LUFS (target {target:>6.2}), \
                 TP {tp:>6.2} (ceiling {ceiling:>5.2})",
                style.name(),
                format!("{format:?}")
            );
        }
    }
}

#[test]
fn thd_n_of_sines_through_master_file_is_below_one_percent() {
    let rate = 44_100;
    let dir = temp_dir();
    let mut worst = 0.0f64;
    for hz in [1000.0, 50.0] {
        for dbfs in [-20.0, -12.0, -6.0, -1.0] {
            let tone = sine(hz, db_to_lin(dbfs), rate, rate as usize * 6);
            let input = path_in(&dir, "tone.wav");
            write_wav(&input, &[tone.clone(), tone], rate, WavKind::Float);
            let output = path_in(&dir, "tone_out.wav");
            let p = default_params(Style::Standard, OutputFormat::Wav { bit_depth: 24 });
            let report = master(&input, &output, &p);
            let (y, out_rate) = decode_all(&output);
            assert_eq!(out_rate, rate);
            // Skip 2 s of settling (compressor, limiter release); stop 1 s before the end,
            // where the linear-phase EQ pre-rings before the tone stops.
            let from = 2 * rate as usize;
            let to = y[0].len() - rate as usize;
            let thd = y
                .iter()
                .map(|ch| thd_n_percent(&ch[from..to], hz, rate))
                .fold(0.0, f64::max);
            println!(
                "THD+N {hz:>6} Hz {dbfs:>5} dBFS → {thd:.4} % (out {:.2} LUFS, {:.2} dBTP)",
                report.after.lufs, report.after.true_peak_db
            );
            assert!(thd < 1.0, "{hz} Hz at {dbfs} dBFS: THD+N {thd:.3} %");
            worst = worst.max(thd);
        }
    }
    println!("worst THD+N through master_file: {worst:.4} %");
}

#[test]
fn unit_width_styles_keep_stereo_correlation_through_master_file() {
    let rate = 44_100;
    let dir = temp_dir();
    let x = partly_correlated(7, rate, rate as usize * 8, 0.6, 0.5);
    let before = correlation(&x[0], &x[1]);
    assert!(
        (0.6..=0.8).contains(&before),
        "test signal correlation {before:.3}"
    );
    let input = wav_in(&dir, "in.wav", &x, rate, WavKind::Float);
    for style in Style::ALL {
        if StyleParams::of(style).width != 1.0 {
            continue;
        }
        let y = master_to_wav24(&input, &dir, style);
        let after = correlation(&y[0], &y[1]);
        println!("{style}: correlation {before:.3} → {after:.3}");
        assert!(
            (after - before).abs() <= 0.05,
            "{style}: correlation {before:.3} → {after:.3}"
        );
    }
}

#[test]
fn classical_and_podcast_keep_most_of_the_loudness_range_through_master_file() {
    let rate = 48_000;
    let dir = temp_dir();
    // 10 s sections at 0, -10, -4, -14, 0 dB: quiet and loud passages.
    let x = sectioned_music(rate, &[0.0, -10.0, -4.0, -14.0, 0.0]);
    let lra_in = loudness_range(&x, rate);
    assert!(
        (15.0..=20.0).contains(&lra_in),
        "test signal LRA {lra_in:.1} LU"
    );
    let input = wav_in(&dir, "in.wav", &x, rate, WavKind::Float);
    for style in [Style::Classical, Style::Podcast] {
        let y = master_to_wav24(&input, &dir, style);
        let lra_out = loudness_range(&y, rate);
        let kept = lra_out / lra_in;
        println!(
            "{style}: LRA {lra_in:.2} → {lra_out:.2} LU ({:.1} % kept)",
            kept * 100.0
        );
        assert!(
            kept >= 0.7,
            "{style} kept only {:.1} % of the LRA",
            kept * 100.0
        );
    }
}

#[test]
fn tonal_balance_moves_toward_each_style_curve_within_six_db() {
    let rate = 44_100;
    let dir = temp_dir();
    let frames = rate as usize * 8;
    // White noise: octave-band power rises 3 dB per octave, far brighter than any style.
    let x = vec![white_noise(0.3, frames, 11), white_noise(0.3, frames, 12)];
    let input = wav_in(&dir, "in.wav", &x, rate, WavKind::Float);
    let before = octave_spectrum(&x, rate);
    let mut violations = Vec::new();
    for style in Style::ALL {
        let y = master_to_wav24(&input, &dir, style);
        let after = octave_spectrum(&y, rate);
        assert_eq!(after.len(), before.len());
        let target = StyleParams::of(style).target_curve();
        let distance = |s: &[(f64, f64)]| -> f64 {
            s.iter()
                .map(|&(hz, db)| {
                    let t = target.iter().find(|t| t.0 == hz).expect("band").1;
                    (db - t).powi(2)
                })
                .sum::<f64>()
                .sqrt()
        };
        let (d_in, d_out) = (distance(&before), distance(&after));
        let moves: Vec<f64> = before.iter().zip(&after).map(|(b, a)| a.1 - b.1).collect();
        println!(
            "{style}: distance to target {d_in:.2} → {d_out:.2} dB; band moves {:?}",
            moves.iter().map(|m| format!("{m:+.2}")).collect::<Vec<_>>()
        );
        if !(d_out < d_in || (d_out - d_in).abs() <= 0.5) {
            violations.push(format!("{style}: distance {d_in:.2} → {d_out:.2} dB"));
        }
        for ((hz, _), m) in before.iter().zip(&moves) {
            if m.abs() > 6.0 {
                violations.push(format!("{style} {hz} Hz moved {m:+.2} dB"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn same_input_and_params_give_identical_bytes() {
    let rate = 44_100;
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &partly_correlated(3, rate, rate as usize * 6, 0.5, 0.9),
        rate,
        WavKind::Float,
    );
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ] {
        let p = default_params(Style::Edm, format);
        let a = path_in(&dir, &format!("a.{}", format.extension()));
        let b = path_in(&dir, &format!("b.{}", format.extension()));
        master(&input, &a, &p);
        master(&input, &b, &p);
        let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(bytes_a.len() > 1000, "{format:?}: {} bytes", bytes_a.len());
        assert!(bytes_a == bytes_b, "{format:?}: outputs differ");
    }
}

/// Material rich in inter-sample peaks at `rate`, 5 s stereo: `kind` 0 is music-like noise
/// under a near-Nyquist sweep, 1 a dense mix driven 9 dB into hard clipping, 2 a square
/// wave (edges between samples) over music-like noise.
fn inter_sample_material(kind: usize, seed: u64, rate: u32) -> Vec<Vec<f32>> {
    use crate::meter::true_peak::adversarial::{clipped_mix, square, sweep};
    let n = rate as usize * 5;
    let bed = music_like(seed, rate, n, 2, 0.5);
    let top: Vec<f32> = match kind {
        0 => sweep(0.3, 0.475, 0.5, rate, n),
        1 => clipped_mix(seed, 9.0, n),
        _ => square(5.13 + (seed % 7) as f64, 0.5, n),
    };
    bed.into_iter()
        .enumerate()
        .map(|(c, ch)| {
            ch.iter()
                .zip(&top)
                .map(|(b, t)| {
                    if kind == 1 {
                        *t * if c == 0 { 1.0 } else { -0.9 }
                    } else {
                        b + t
                    }
                })
                .collect()
        })
        .collect()
}

/// Every style into every format (the rate alternating between 44.1 and 48 kHz, the
/// material rotating) on 5 s of material rich in inter-sample peaks
/// (near-Nyquist sweeps, hard clipping, squares): the decoded file's true peak by the
/// reference meter (8× polyphase, 128 taps per phase, parabolic refinement) stays at or
/// under the -1 dBTP ceiling, and the loudness is within 0.1 LU of the target (ebur128
/// crate) unless the report warns that the target was out of reach.
#[test]
fn inter_sample_peaks_stay_under_the_ceiling_by_the_reference_meter() {
    use crate::testutil::reference_peak::reference_true_peak;
    let dir = temp_dir();
    let mut worst = f64::NEG_INFINITY;
    let mut k = 0usize;
    for style in Style::ALL {
        for format in FORMATS {
            let rate = if k.is_multiple_of(2) { 44_100 } else { 48_000 };
            let kind = (k / 2) % 3;
            let x = inter_sample_material(kind, k as u64 + 1, rate);
            k += 1;
            let input = wav_in(&dir, "in.wav", &x, rate, WavKind::Float);
            let output = path_in(&dir, &format!("out.{}", format.extension()));
            let p = default_params(style, format);
            let report = master(&input, &output, &p);
            let (planes, out_rate) = decode_all(&output);
            assert_eq!(out_rate, rate);
            let tp = reference_true_peak(&planes).dbtp();
            let (got, _) = independent_planes(&planes, rate);
            let what = format!("{rate} Hz material {kind} {style} {format:?}");
            println!(
                "{what}: reference TP {tp:.3} dBTP (chain {:.3}), {:.2} LUFS (target {:.1})",
                report.after.true_peak_db, got.lufs, p.target_lufs
            );
            worst = worst.max(tp);
            assert!(
                tp <= p.true_peak_db,
                "{what}: reference true peak {tp:.4} dBTP"
            );
            let out_of_reach = report.warnings.iter().any(|w| w.contains("out of reach"));
            assert!(
                (got.lufs - p.target_lufs).abs() <= 0.1 || out_of_reach,
                "{what}: {:.3} LUFS, target {}",
                got.lufs,
                p.target_lufs
            );
        }
    }
    println!("inter-sample material: highest reference true peak {worst:.4} dBTP");
}

/// ffmpeg's `ebur128=peak=true` true peak of `path`, dBTP, to three decimals of the linear
/// value (its summary prints one decimal of dB): the largest `lavfi.r128.true_peak` (the
/// running maximum over the channels) in its frame metadata.
fn ffmpeg_true_peak_db(path: &Path, dir: &tempfile::TempDir) -> f64 {
    let meta = path_in(dir, "ebur128.txt");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i"])
        .arg(path)
        .arg("-af")
        .arg(format!(
            "ebur128=peak=true:metadata=1,ametadata=mode=print:file={}",
            meta.display()
        ))
        .args(["-f", "null", "-"])
        .status()
        .expect("MAGIC_MASTER_TEST_MUSIC_DIR is set but ffmpeg cannot run: install ffmpeg");
    assert!(status.success(), "ffmpeg failed on {path:?}");
    let text = std::fs::read_to_string(&meta).expect("ffmpeg's metadata");
    let peak = text
        .lines()
        .filter_map(|l| l.strip_prefix("lavfi.r128.true_peak="))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .fold(f64::NAN, f64::max);
    assert!(peak.is_finite(), "no true peak in ffmpeg's metadata");
    20.0 * peak.log10()
}

/// Real recordings (frozen-bubble, `MAGIC_MASTER_TEST_MUSIC_DIR`; skipped when unset): a
/// hard-clipped copy of the first 60 s of `frozen-mainzik-2p` (made here with ffmpeg: +8 dB
/// into 16 bits, then Vorbis; the full-length copy was once written at -0.843 dBTP by the
/// reference) in the two loudest styles to WAV 16 and in edm to MP3 320, and the untouched
/// first 60 s of the dense `frozen-mainzik-1p` (Vorbis packets copied, not re-encoded) in
/// edm to FLAC 24: the written file's true peak stays at or under the -1 dBTP ceiling by
/// the reference meter and by ffmpeg's `ebur128=peak=true` (its three-decimal linear value:
/// ±0.005 dB of rounding allowed). 60 s cuts keep the test's time in CI small (the full
/// tracks took 276 s on a loaded machine); what the chain does is the same on any length.
#[test]
fn real_music_stays_under_the_ceiling_by_the_reference_and_ffmpeg() {
    use crate::testutil::reference_peak::reference_true_peak;
    let Ok(dir) = std::env::var("MAGIC_MASTER_TEST_MUSIC_DIR") else {
        eprintln!("real_music ceiling: skipped (MAGIC_MASTER_TEST_MUSIC_DIR is not set)");
        return;
    };
    let dir = Path::new(&dir);
    let tmp = temp_dir();
    let ffmpeg = |input: &Path, output: &Path, args: &[&str]| {
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(input)
            .args(["-t", "60"])
            .args(args)
            .arg(output)
            .status()
            .expect("MAGIC_MASTER_TEST_MUSIC_DIR is set but ffmpeg cannot run: install ffmpeg");
        assert!(status.success(), "ffmpeg could not cut {input:?}");
    };
    let clipped = path_in(&tmp, "clipped.ogg");
    ffmpeg(
        &dir.join("frozen-mainzik-2p.ogg"),
        &clipped,
        &[
            "-af",
            "volume=8dB,aformat=sample_fmts=s16",
            "-c:a",
            "libvorbis",
            "-q:a",
            "10",
        ],
    );
    let dense = path_in(&tmp, "dense.ogg");
    ffmpeg(
        &dir.join("frozen-mainzik-1p.ogg"),
        &dense,
        &["-c:a", "copy"],
    );
    let cases = [
        (&clipped, Style::Edm, OutputFormat::Wav { bit_depth: 16 }),
        (
            &clipped,
            Style::HouseBasic,
            OutputFormat::Wav { bit_depth: 16 },
        ),
        (
            &clipped,
            Style::Edm,
            OutputFormat::Mp3 { bitrate_kbps: 320 },
        ),
        (&dense, Style::Edm, OutputFormat::Flac { bit_depth: 24 }),
    ];
    let (mut worst_ref, mut worst_ffmpeg) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut k = 0;
    for &(input, style, format) in &cases {
        k += 1;
        let output = path_in(&tmp, &format!("out.{}", format.extension()));
        let p = default_params(style, format);
        let report = master(input, &output, &p);
        let (planes, _) = decode_all(&output);
        let reference = reference_true_peak(&planes).dbtp();
        let ffmpeg = ffmpeg_true_peak_db(&output, &tmp);
        let name = input.file_name().unwrap_or_default().to_string_lossy();
        eprintln!(
            "real_music ceiling {name} {style} {format:?}: reference {reference:.3}, ffmpeg \
                 {ffmpeg:.3}, chain {:.3} dBTP; {:.2} LUFS",
            report.after.true_peak_db, report.after.lufs
        );
        worst_ref = worst_ref.max(reference);
        worst_ffmpeg = worst_ffmpeg.max(ffmpeg);
        assert!(
            reference <= p.true_peak_db,
            "{name} {style} {format:?}: reference true peak {reference:.4} dBTP"
        );
        assert!(
            ffmpeg <= p.true_peak_db + 0.005,
            "{name} {style} {format:?}: ffmpeg true peak {ffmpeg:.4} dBTP"
        );
    }
    eprintln!(
        "real_music ceiling: {k} masters, highest true peak {worst_ref:.3} (reference), \
         {worst_ffmpeg:.3} (ffmpeg) dBTP"
    );
}
