use super::*;
use crate::dsp::styles::StyleParams;
use crate::meter::LoudnessMeter;
use crate::params::Style;
use crate::stage::BlockProcessor;
use crate::testutil::*;
use std::cell::Cell;
use std::sync::atomic::Ordering;

thread_local! {
    /// Passes of the limiter over the whole track (loudness loop, final encode, corrections)
    /// made by this thread's chain runs; every test runs in a thread of its own.
    pub(super) static LIMITER_PASSES: Cell<usize> = const { Cell::new(0) };
    /// The first written file's loudness minus the loudness model's prediction, LU (`None`
    /// when the gain did not come from the model).
    pub(super) static MODEL_MISS: Cell<Option<f64>> = const { Cell::new(None) };
    /// Reads of the whole processed track made only to build the loudness model (when pass
    /// B metered a track the limiter turns out to work on).
    pub(super) static MODEL_READS: Cell<usize> = const { Cell::new(0) };
    /// Refinements of the loudness model's peaks (`LoudnessModel::refine` calls that
    /// detected deeper than before).
    pub(super) static MODEL_REFINEMENTS: Cell<usize> = const { Cell::new(0) };
    /// Limiter passes that took their peaks from the model's stored tile peaks instead of
    /// detecting them on the audio.
    pub(super) static STORED_PEAK_PASSES: Cell<usize> = const { Cell::new(0) };
    /// The last run's input loudness minus its processed (pre-gain) loudness, LU.
    pub(super) static PROCESSING_DROP: Cell<f64> = const { Cell::new(0.0) };
    /// Predictions asked of the loudness model by the gain search (`solve_on_model`).
    pub(super) static PREDICTIONS: Cell<usize> = const { Cell::new(0) };
}

/// Masters `input` and returns the report and the number of limiter passes it took.
fn master_counting(input: &Path, output: &Path, p: &MasterParams) -> (MasterReport, usize) {
    LIMITER_PASSES.with(|c| c.set(0));
    let report = master(input, output, p).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    (report, LIMITER_PASSES.with(Cell::get))
}

/// Most limiter passes a master may take (issue 11: dense material converges in ≤ 3).
const MAX_PASSES: usize = 3;

fn params(style: Style, target: Option<f64>, format: OutputFormat) -> MasterParams {
    MasterParams::new(style, target, Some(-1.0), format).unwrap()
}

fn master(input: &Path, output: &Path, p: &MasterParams) -> Result<MasterReport, MasterError> {
    master_file_with(
        input,
        output,
        p,
        &MasteringStages,
        &mut |_| {},
        &AtomicBool::new(false),
    )
}

/// Measures a decoded file with the ebur128 crate: a meter other than the chain's own.
fn independent(path: &Path) -> (Loudness, usize, u32, usize) {
    let (planes, rate) = decode_all(path);
    let (loudness, clipped) = independent_planes(&planes, rate);
    (loudness, planes.len(), rate, clipped)
}

/// Loudness of decoded planes by the reference meter ([`LoudnessMeter`], ebur128 crate) and
/// the number of samples at or above digital full scale.
pub(super) fn independent_planes(planes: &[Vec<f32>], rate: u32) -> (Loudness, usize) {
    let mut m = LoudnessMeter::new(planes.len(), rate, MeterMode::FULL).unwrap();
    m.add_block(planes).unwrap();
    let clipped = planes
        .iter()
        .flat_map(|p| p.iter())
        .filter(|s| s.abs() >= 1.0)
        .count();
    (m.loudness(), clipped)
}

/// Dense, loud, partly correlated noise with a beat: the limiter has work to do.
fn loud_music(rate: u32, secs: f64, channels: usize) -> Vec<Vec<f32>> {
    pink_noise_and_kick(rate, secs, channels, 0.7, (21, 22))
}

/// Two pink noises of peak `level` (seeds `seeds`) mixed 0.8/0.2 into the even channels and
/// 0.2/0.8 into the odd ones, plus a 55 Hz kick twice a second at 0.5: loud, dense,
/// partly correlated material with a beat.
pub(super) fn pink_noise_and_kick(
    rate: u32,
    secs: f64,
    channels: usize,
    level: f64,
    seeds: (u64, u64),
) -> Vec<Vec<f32>> {
    let n = (f64::from(rate) * secs) as usize;
    let a = pink_noise(level, n, seeds.0);
    let b = pink_noise(level, n, seeds.1);
    (0..channels)
        .map(|c| {
            let (wa, wb) = if c % 2 == 0 { (0.8, 0.2) } else { (0.2, 0.8) };
            a.iter()
                .zip(&b)
                .enumerate()
                .map(|(i, (x, y))| {
                    let t = i as f64 / f64::from(rate);
                    let kick = (-((t * 2.0).fract()) * 30.0).exp()
                        * (2.0 * std::f64::consts::PI * 55.0 * t).sin();
                    (wa * f64::from(*x) + wb * f64::from(*y) + 0.5 * kick) as f32
                })
                .collect()
        })
        .collect()
}

fn assert_delivered(path: &Path, p: &MasterParams, report: &MasterReport) {
    let (got, _, _, clipped) = independent(path);
    let what = format!("{:?} {}", p.format, path.display());
    assert!(
        (got.lufs - p.target_lufs).abs() <= 0.1,
        "{what}: {:.3} LUFS, target {}",
        got.lufs,
        p.target_lufs
    );
    assert!(
        got.true_peak_db <= p.true_peak_db,
        "{what}: true peak {:.3}",
        got.true_peak_db
    );
    assert_eq!(clipped, 0, "{what}: samples at full scale");
    assert!(
        (report.after.lufs - got.lufs).abs() < 0.02,
        "{what}: report says {}",
        report.after.lufs
    );
    assert!((report.after.true_peak_db - got.true_peak_db).abs() < 0.05);
}

#[test]
fn loud_input_reaches_every_format_within_tolerance() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(44_100, 12.0, 2),
        44_100,
        WavKind::Float,
    );
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
        OutputFormat::Mp3 { bitrate_kbps: 128 },
    ] {
        let output = path_in(&dir, &format!("o.{}", format.extension()));
        let p = params(Style::Edm, None, format);
        let report = master(&input, &output, &p).unwrap();
        assert_delivered(&output, &p, &report);
        assert_eq!((report.sample_rate, report.channels), (44_100, 2));
    }
}

#[test]
fn float_input_far_above_full_scale_masters() {
    let dir = temp_dir();
    let music = loud_music(44_100, 8.0, 2);
    let peak = music.iter().flatten().fold(0.0f32, |m, s| m.max(s.abs()));
    // A dense (saturated) mix: little crest, so its loudness is close to its peak.
    let dense: Vec<Vec<f32>> = music
        .iter()
        .map(|p| p.iter().map(|s| (4.0 * s / peak).tanh()).collect())
        .collect();
    for (over_db, source, source_peak) in [
        (12.0, &music, peak),
        (12.0, &dense, 1.0),
        (40.0, &music, peak),
    ] {
        // A float mix whose peaks reach +12 dBFS (and a wilder one): overs, not damage.
        let gain = (db_to_amp(over_db) / f64::from(source_peak)) as f32;
        let sig: Vec<Vec<f32>> = source
            .iter()
            .map(|p| p.iter().map(|s| s * gain).collect())
            .collect();
        let input = wav_in(&dir, "over-in.wav", &sig, 44_100, WavKind::Float);
        for format in [
            OutputFormat::Wav { bit_depth: 16 },
            OutputFormat::Flac { bit_depth: 24 },
        ] {
            let out = path_in(&dir, &format!("over.{}", format.extension()));
            let p = params(Style::Standard, None, format);
            let report = master(&input, &out, &p)
                .unwrap_or_else(|e| panic!("+{over_db} dBFS float input refused: {e}"));
            assert!(
                report.before.sample_peak_db > over_db - 0.1,
                "the overs reached the chain: {:?}",
                report.before
            );
            // The chain's own meter, then an independent one, on the written file.
            assert!(
                (report.after.lufs - p.target_lufs).abs() <= 0.1,
                "+{over_db} dBFS: {:?}",
                report.after
            );
            assert!(
                report.after.true_peak_db <= p.true_peak_db,
                "{:?}",
                report.after
            );
            assert_delivered(&out, &p, &report);
        }
    }
}

#[test]
fn clips_from_half_a_second_master() {
    let dir = temp_dir();
    for secs in [0.5, 1.0, 2.9] {
        let input = wav_in(
            &dir,
            "clip.wav",
            &loud_music(44_100, secs, 2),
            44_100,
            WavKind::Int(16),
        );
        let info = crate::probe_masterable(&input, 7200.0)
            .unwrap_or_else(|e| panic!("{secs} s refused at probe: {e}"));
        assert_eq!(info.duration_sec, Some(secs));
        for format in [
            OutputFormat::Wav { bit_depth: 16 },
            OutputFormat::Mp3 { bitrate_kbps: 320 },
        ] {
            let out = path_in(&dir, &format!("clip.{}", format.extension()));
            let p = params(Style::Standard, None, format);
            let report = master(&input, &out, &p).unwrap_or_else(|e| panic!("{secs} s clip: {e}"));
            assert_delivered(&out, &p, &report);
            assert!((report.duration_sec - secs).abs() < 0.05, "{secs} s");
        }
    }
    // Under the minimum: refused by the probe (before queueing) and by the chain.
    let input = wav_in(
        &dir,
        "short.wav",
        &loud_music(44_100, 0.45, 2),
        44_100,
        WavKind::Int(16),
    );
    assert!(matches!(
        crate::probe_masterable(&input, 7200.0),
        Err(MasterError::TooShort(_))
    ));
}

/// Zeroes the total sample count of a FLAC's STREAMINFO: "length unknown", as a FLAC
/// written to a pipe has it.
fn forget_flac_length(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"fLaC");
    // "fLaC", block header (4), min/max block (4), min/max frame (6), then 20 bits of rate,
    // 3 of channels, 5 of bits per sample and 36 of total samples.
    bytes[21] &= 0xF0;
    bytes[22..26].fill(0);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn inputs_over_the_duration_limit_are_refused_while_decoding() {
    let dir = temp_dir();
    let music = loud_music(44_100, 6.0, 2);
    let wav = wav_in(&dir, "long.wav", &music, 44_100, WavKind::Int(16));
    let flac = path_in(&dir, "long.flac");
    let mut enc =
        crate::encode::create_encoder(&flac, OutputFormat::Flac { bit_depth: 16 }, 44_100, 2)
            .unwrap();
    enc.write(&music).unwrap();
    enc.finish().unwrap();
    forget_flac_length(&flac);
    let p = params(Style::Standard, None, OutputFormat::Wav { bit_depth: 16 });
    let out = path_in(&dir, "out.wav");

    // The header declares 6 s: refused by the probe and at the start of the chain.
    let err = crate::probe_masterable(&wav, 5.0).unwrap_err();
    assert!(matches!(err, MasterError::TooLong(_)), "{err:?}");
    assert!(err.to_string().contains("at most 5 s"), "{err}");
    assert!(crate::probe_masterable(&wav, 7.0).is_ok());
    let err =
        master_file_within(&wav, &out, &p, 5.0, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, MasterError::TooLong(_)), "{err:?}");

    // No declared length: the probe cannot know, the decoder counts and stops at 5 s.
    assert_eq!(crate::probe(&flac).unwrap().duration_sec, None);
    assert!(crate::probe_masterable(&flac, 5.0).is_ok());
    let mut furthest = 0.0f32;
    let err = master_file_within(
        &flac,
        &out,
        &p,
        5.0,
        &mut |pr| furthest = furthest.max(pr.fraction),
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert!(matches!(err, MasterError::TooLong(_)), "{err:?}");
    assert!(err.is_permanent() && err.is_input_fault());
    assert!(furthest < 0.25, "refused while decoding, at {furthest}");
    assert!(!out.exists());
    let err = crate::analyze_file_within(&flac, 5.0).unwrap_err();
    assert!(matches!(err, MasterError::TooLong(_)), "{err:?}");
    // Under the limit the same files master.
    let report =
        master_file_within(&flac, &out, &p, 7.0, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_delivered(&out, &p, &report);
}

#[test]
fn every_style_target_is_met() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(48_000, 8.0, 2),
        48_000,
        WavKind::Int(24),
    );
    for style in Style::ALL {
        let output = path_in(&dir, &format!("{}.wav", style.name()));
        let p = params(style, None, OutputFormat::Wav { bit_depth: 16 });
        let report = master(&input, &output, &p).unwrap();
        assert_delivered(&output, &p, &report);
    }
    // The quiet end of the allowed target range, and a hot one.
    for target in [-30.0, -7.0] {
        let output = path_in(&dir, "edge.wav");
        let p = params(
            Style::Standard,
            Some(target),
            OutputFormat::Wav { bit_depth: 24 },
        );
        let report = master(&input, &output, &p).unwrap();
        assert_delivered(&output, &p, &report);
    }
}

/// -5 LUFS under -1 dBTP needs a PLR of 4 dB: the style's limiter saturates near -10 LUFS
/// on this dense, bass-heavy material; the loudness loop raises the limiter's drive (faster
/// hold and release, then the soft saturator) until the target is met.
#[test]
fn loudest_target_is_met() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(48_000, 8.0, 2),
        48_000,
        WavKind::Int(24),
    );
    let output = path_in(&dir, "o.wav");
    let p = params(Style::Edm, Some(-5.0), OutputFormat::Wav { bit_depth: 24 });
    let report = master(&input, &output, &p).unwrap();
    assert_delivered(&output, &p, &report);
}

/// -5 LUFS under a -9 dBTP ceiling asks for loudness 4 dB above the peak level: out of reach
/// for music. The ceiling is kept, the loudest the chain can make is delivered, and the
/// report says so. (`loudest_target_is_met` shows -5 LUFS *is* reached under -1 dBTP.)
#[test]
fn an_unreachable_target_is_delivered_with_a_warning() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(48_000, 8.0, 2),
        48_000,
        WavKind::Int(24),
    );
    let output = path_in(&dir, "o.wav");
    let mut p = params(Style::Edm, Some(-5.0), OutputFormat::Wav { bit_depth: 24 });
    p.true_peak_db = -9.0;
    let report = master(&input, &output, &p).unwrap();
    let (got, ..) = independent(&output);
    assert!(
        got.true_peak_db <= -9.0,
        "the ceiling is never traded for loudness: {:.2} dBTP",
        got.true_peak_db
    );
    assert!(got.lufs < -5.1, "{:.2} LUFS", got.lufs);
    assert!(
        report.warnings.iter().any(|w| w.contains("out of reach")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn odd_inputs_master_or_fail_clearly() {
    let dir = temp_dir();
    let wav16 = OutputFormat::Wav { bit_depth: 16 };
    let out = path_in(&dir, "out.wav");
    let ok_cases: Vec<(&str, Vec<Vec<f32>>, u32, WavKind)> = vec![
        ("8bit", loud_music(22_050, 5.0, 2), 22_050, WavKind::Int(8)),
        ("11k", loud_music(11_025, 5.0, 1), 11_025, WavKind::Int(16)),
        ("96k", loud_music(96_000, 4.0, 2), 96_000, WavKind::Int(24)),
        ("5.1", loud_music(48_000, 5.0, 6), 48_000, WavKind::Int(16)),
    ];
    for (name, sig, rate, kind) in ok_cases {
        let input = path_in(&dir, &format!("{name}.wav"));
        write_wav(&input, &sig, rate, kind);
        let p = params(Style::Standard, None, wav16);
        let report = master(&input, &out, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_delivered(&out, &p, &report);
        let (_, channels, got_rate, _) = independent(&out);
        assert_eq!(
            (channels, got_rate),
            (sig.len(), rate),
            "{name}: layout kept"
        );
    }

    // Float with NaN, infinities and overs above 0 dBFS.
    let mut sig = loud_music(44_100, 5.0, 2);
    for (i, s) in sig[1].iter_mut().enumerate().step_by(7919) {
        *s = match i % 3 {
            0 => f32::NAN,
            1 => 3.5,
            _ => f32::NEG_INFINITY,
        };
    }
    let input = path_in(&dir, "nan.wav");
    write_wav(&input, &sig, 44_100, WavKind::Float);
    let p = params(Style::Standard, None, wav16);
    let report = master(&input, &out, &p).unwrap();
    assert!(
        report.before.true_peak_db > 10.0,
        "overs kept in the input measurement"
    );
    assert!(
        report.warnings[0].contains("invalid samples"),
        "{:?}",
        report.warnings
    );
    assert_delivered(&out, &p, &report);

    // 5.1 cannot be an MP3: a clear error, no file.
    let input = path_in(&dir, "5.1.wav");
    let p = params(
        Style::Standard,
        None,
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    );
    let mp3_out = path_in(&dir, "out.mp3");
    let err = master(&input, &mp3_out, &p).unwrap_err();
    assert!(matches!(err, MasterError::Encode(_)), "{err:?}");
    assert!(!mp3_out.exists());

    let p = params(Style::Standard, None, wav16);
    let short = path_in(&dir, "short.wav");
    write_wav(
        &short,
        &loud_music(44_100, 0.4, 2),
        44_100,
        WavKind::Int(16),
    );
    assert!(matches!(
        master(&short, &out, &p),
        Err(MasterError::TooShort(_))
    ));

    let silent = path_in(&dir, "silent.wav");
    write_wav(
        &silent,
        &vec![vec![0.0; 44_100 * 5]; 2],
        44_100,
        WavKind::Int(16),
    );
    assert!(matches!(
        master(&silent, &out, &p),
        Err(MasterError::Silent(_))
    ));

    let empty = path_in(&dir, "empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        master(&empty, &out, &p),
        Err(MasterError::Unsupported(_))
    ));

    let text = path_in(&dir, "text.wav");
    std::fs::write(&text, "just some words, not a RIFF header\n".repeat(100)).unwrap();
    assert!(matches!(
        master(&text, &out, &p),
        Err(MasterError::Unsupported(_))
    ));
    assert!(!out.exists(), "failed runs leave no output");
}

#[test]
fn truncated_files_master_or_fail_clearly() {
    let dir = temp_dir();
    let src = loud_music(44_100, 6.0, 2);
    let wav = path_in(&dir, "src.wav");
    write_wav(&wav, &src, 44_100, WavKind::Int(16));
    let flac = path_in(&dir, "src.flac");
    let mp3 = path_in(&dir, "src.mp3");
    for (path, format) in [
        (&flac, OutputFormat::Flac { bit_depth: 16 }),
        (&mp3, OutputFormat::Mp3 { bitrate_kbps: 192 }),
    ] {
        let mut enc = crate::encode::create_encoder(path, format, 44_100, 2).unwrap();
        enc.write(&src).unwrap();
        enc.finish().unwrap();
    }
    let out = path_in(&dir, "out.wav");
    let p = params(Style::Standard, None, OutputFormat::Wav { bit_depth: 16 });
    for source in [&wav, &flac, &mp3] {
        let bytes = std::fs::read(source).unwrap();
        for keep in [0.7, 0.3, 0.02] {
            let cut = path_in(
                &dir,
                &format!("cut.{}", source.extension().unwrap().to_str().unwrap()),
            );
            std::fs::write(&cut, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
            match master(&cut, &out, &p) {
                Ok(report) => {
                    assert!(report.duration_sec >= run::MIN_DURATION_SEC);
                    assert_delivered(&out, &p, &report);
                }
                Err(e) => assert!(
                    matches!(
                        e,
                        MasterError::Corrupt(_)
                            | MasterError::TooShort(_)
                            | MasterError::Unsupported(_)
                    ),
                    "{}: {e:?}",
                    source.display()
                ),
            }
        }
        // Damage in the middle: overwrite 2 kB with garbage.
        let mut damaged = bytes.clone();
        let mid = damaged.len() / 2;
        for (i, b) in damaged[mid..mid + 2048].iter_mut().enumerate() {
            *b = (i * 7 + 13) as u8;
        }
        let cut = path_in(
            &dir,
            &format!("bad.{}", source.extension().unwrap().to_str().unwrap()),
        );
        std::fs::write(&cut, &damaged).unwrap();
        match master(&cut, &out, &p) {
            Ok(report) => assert!((report.after.lufs - p.target_lufs).abs() <= 0.1),
            Err(e) => assert!(matches!(e, MasterError::Corrupt(_)), "{e:?}"),
        }
    }
}

#[test]
fn mono_stays_mono_and_output_is_deterministic() {
    let dir = temp_dir();
    let input = path_in(&dir, "mono.wav");
    write_wav(
        &input,
        &loud_music(44_100, 5.0, 1),
        44_100,
        WavKind::Int(16),
    );
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
        OutputFormat::Mp3 { bitrate_kbps: 192 },
    ] {
        let a = path_in(&dir, &format!("a.{}", format.extension()));
        let b = path_in(&dir, &format!("b.{}", format.extension()));
        let p = params(Style::Podcast, None, format);
        let report = master(&input, &a, &p).unwrap();
        master(&input, &b, &p).unwrap();
        assert_eq!(report.channels, 1, "{format:?}");
        assert_eq!(independent(&a).1, 1);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{format:?} differs"
        );
    }
}

/// The memory-backed and the disk-backed track stores give the same bytes.
#[test]
fn memory_and_disk_stores_give_identical_output() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(44_100, 6.0, 2),
        44_100,
        WavKind::Int(16),
    );
    for (style, format) in [
        (Style::Standard, OutputFormat::Wav { bit_depth: 16 }),
        (Style::Edm, OutputFormat::Flac { bit_depth: 24 }),
    ] {
        let p = params(style, None, format);
        let run = |name: &str, budget: u64| {
            let out = path_in(&dir, &format!("{name}.{}", format.extension()));
            let report = master_file_budgeted(
                &input,
                &out,
                &p,
                &MasteringStages,
                (&mut |_| {}, &AtomicBool::new(false)),
                Limits {
                    budget,
                    max_duration_sec: None,
                },
            )
            .unwrap();
            (std::fs::read(&out).unwrap(), report.after)
        };
        let (memory, after_memory) = run("memory", MEMORY_BUDGET_BYTES);
        let (disk, after_disk) = run("disk", 0);
        assert!(memory == disk, "{style:?} {format:?}: the stores differ");
        assert_eq!(after_memory, after_disk);
    }
}

#[test]
fn track_store_rewrites_in_place_and_migrates_to_disk() {
    let dir = temp_dir();
    let l = white_noise(1.0, 10_000, 1);
    let r = white_noise(0.5, 10_000, 2);
    // Unknown length (0) and a budget of 6000 stereo frames: it starts in memory and moves
    // to disk when it outgrows the budget.
    let mut store = TrackStore::new(dir.path(), 2, 0, 6000 * 8).unwrap();
    for start in (0..10_000).step_by(3000) {
        let end = (start + 3000).min(10_000);
        assert!(store.in_memory() == (start <= 6000), "at {start}");
        store
            .write(&[l[start..end].to_vec(), r[start..end].to_vec()])
            .unwrap();
    }
    assert!(!store.in_memory());
    assert_eq!(store.frames(), 10_000);
    // In memory: a rewrite through a pipeline with latency lands in place, aligned.
    let mut mem = TrackStore::new(dir.path(), 2, 10_000, u64::MAX).unwrap();
    mem.write(&[l.clone(), r.clone()]).unwrap();
    assert!(mem.in_memory());
    let mut pipe = Pipeline::new(vec![NamedStage::new(
        "delay",
        Box::new(Delay {
            line: vec![vec![0.0; 700]; 2],
        }),
    )]);
    let mut pass = mem.rewrite(dir.path(), 4096).unwrap();
    let mut block = Vec::new();
    while pass.read_block(&mut block).unwrap() > 0 {
        for plane in &mut block {
            for v in plane.iter_mut() {
                *v *= 2.0;
            }
        }
        if pipe.process(&mut block) > 0 {
            pass.write(&block).unwrap();
        }
    }
    pipe.flush(2, 4096, |b: &[Vec<f32>]| pass.write(b)).unwrap();
    assert!(pass.finish().unwrap().is_none(), "stays in memory");
    let mut reader = mem.reader(3333).unwrap();
    let (mut gl, mut gr) = (Vec::new(), Vec::new());
    while reader.read_block(&mut block).unwrap() > 0 {
        gl.extend_from_slice(&block[0]);
        gr.extend_from_slice(&block[1]);
    }
    let doubled = |x: &[f32]| x.iter().map(|v| v * 2.0).collect::<Vec<f32>>();
    assert!(gl == doubled(&l) && gr == doubled(&r));
}

#[test]
fn progress_and_cancel() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(44_100, 6.0, 2),
        44_100,
        WavKind::Int(16),
    );
    let out = path_in(&dir, "o.wav");
    let p = params(Style::Edm, None, OutputFormat::Wav { bit_depth: 16 });
    let mut seen = Vec::new();
    let report = master_file_with(
        &input,
        &out,
        &p,
        &MasteringStages,
        &mut |x| seen.push(x),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(
        seen.windows(2).all(|w| w[1].fraction >= w[0].fraction),
        "monotonic"
    );
    assert_eq!(seen.last().unwrap().fraction, 1.0);
    for stage in [
        Stage::Decode,
        Stage::LoudnessCorrection,
        Stage::Encode,
        Stage::Analysis,
    ] {
        assert!(seen.iter().any(|x| x.stage == stage), "{stage:?} reported");
    }
    let labels: Vec<&str> = report
        .stage_seconds
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    for l in [
        "decode",
        "dc",
        "analysis",
        "equalizer",
        "dynamics",
        "limiter",
        "loudness_correction",
        "encode",
        "verify",
    ] {
        assert!(labels.contains(&l), "{l} timed: {labels:?}");
    }

    std::fs::remove_file(&out).unwrap();
    let cancel = AtomicBool::new(false);
    let err = master_file_with(
        &input,
        &out,
        &p,
        &MasteringStages,
        &mut |x| {
            if x.stage == Stage::LoudnessCorrection {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, MasterError::Cancelled));
    assert!(!out.exists());
}

/// A stage that only delays: the pipeline must hide its latency exactly.
struct Delay {
    line: Vec<Vec<f32>>,
}

impl BlockProcessor for Delay {
    fn process(&mut self, block: &mut [Vec<f32>]) {
        for (plane, line) in block.iter_mut().zip(&mut self.line) {
            for s in plane.iter_mut() {
                line.push(*s);
                *s = line.remove(0);
            }
        }
    }
    fn latency(&self) -> usize {
        self.line[0].len()
    }
    fn reset(&mut self) {
        for l in &mut self.line {
            l.fill(0.0);
        }
    }
}

#[test]
fn pipeline_compensates_latency_exactly() {
    let x = white_noise(0.5, 10_000, 3);
    let stages = vec![
        NamedStage::new(
            "d1",
            Box::new(Delay {
                line: vec![vec![0.0; 700]],
            }),
        ),
        NamedStage::new(
            "d2",
            Box::new(Delay {
                line: vec![vec![0.0; 5000]],
            }),
        ),
    ];
    let mut p = Pipeline::new(stages);
    assert_eq!(p.latency(), 5700);
    let mut out = Vec::new();
    for chunk in x.chunks(1234) {
        let mut block = vec![chunk.to_vec()];
        p.process(&mut block);
        out.extend_from_slice(&block[0]);
    }
    p.flush(1, 1000, |b: &[Vec<f32>]| -> Result<(), ()> {
        out.extend_from_slice(&b[0]);
        Ok(())
    })
    .unwrap();
    assert_eq!(out, x);
}

#[test]
fn spill_buffer_round_trips_and_rereads() {
    let dir = temp_dir();
    let mut s = SpillBuffer::new_in(dir.path(), 2).unwrap();
    let l = white_noise(1.5, 9_999, 4);
    let r = white_noise(0.5, 9_999, 5);
    for start in (0..l.len()).step_by(4000) {
        let end = (start + 4000).min(l.len());
        s.write(&[l[start..end].to_vec(), r[start..end].to_vec()])
            .unwrap();
    }
    assert_eq!(s.frames(), 9_999);
    for _ in 0..2 {
        let mut reader = s.reader(3000).unwrap();
        let (mut gl, mut gr) = (Vec::new(), Vec::new());
        let mut block = Vec::new();
        while reader.read_block(&mut block).unwrap() > 0 {
            gl.extend_from_slice(&block[0]);
            gr.extend_from_slice(&block[1]);
        }
        assert!(gl == l && gr == r);
    }
    assert!(s.write(&[vec![0.0], vec![0.0]]).is_err(), "write-once");
}

#[test]
fn limiter_in_a_pipeline_holds_the_ceiling() {
    let rate = 48_000;
    let sig = loud_music(rate, 4.0, 2);
    let boosted: Vec<Vec<f32>> = sig
        .iter()
        .map(|p| p.iter().map(|s| s * 4.0).collect())
        .collect();
    let mut p = Pipeline::new(vec![NamedStage::new(
        "lim",
        Box::new(
            crate::dsp::limiter::TruePeakLimiter::new(
                rate,
                2,
                &crate::dsp::limiter::LimiterSettings::with_ceiling(-1.0),
            )
            .unwrap(),
        ),
    )]);
    let mut out = vec![Vec::new(), Vec::new()];
    for start in (0..boosted[0].len()).step_by(4096) {
        let end = (start + 4096).min(boosted[0].len());
        let mut block: Vec<Vec<f32>> = boosted.iter().map(|c| c[start..end].to_vec()).collect();
        p.process(&mut block);
        for (o, b) in out.iter_mut().zip(&block) {
            o.extend_from_slice(b);
        }
    }
    p.flush(2, 4096, |b: &[Vec<f32>]| -> Result<(), ()> {
        for (o, x) in out.iter_mut().zip(b) {
            o.extend_from_slice(x);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(out[0].len(), boosted[0].len());
    // The limiter holds the exact true peak (the reference meter); the ebur128 crate's 4×
    // interpolator reads above it where its passband ripple is positive (here by 0.14 dB),
    // which the chain's final verification catches (printed for comparison).
    let mut m = LoudnessMeter::new(2, rate, MeterMode::INTEGRATED_TRUE_PEAK).unwrap();
    m.add_block(&out).unwrap();
    let tp = crate::testutil::reference_peak::reference_true_peak(&out).dbtp();
    println!(
        "limiter in a pipeline: {tp:.4} dBTP (ebur128 crate {:.4})",
        m.true_peak_db()
    );
    assert!(tp <= -1.0, "true peak {tp}");
    // Quiet passages pass untouched (gain 1 once the release has recovered).
    let quiet: Vec<Vec<f32>> = sig
        .iter()
        .map(|c| c.iter().map(|s| s * 0.1).collect())
        .collect();
    p.reset();
    let mut block = quiet.clone();
    let n = p.process(&mut block);
    let lat = p.latency();
    assert_eq!(n, quiet[0].len() - lat);
    assert!(block[0].iter().zip(&quiet[0]).all(|(a, b)| a == b));
}

/// Peak resident memory of this process, bytes (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// docs/QUALITY.md §4: a 60-minute stereo input masters under 512 MB peak RSS. Heavy (writes a
/// 635 MB WAV and masters it): run alone with
/// `cargo test -p mastering --release -- --ignored sixty_minutes --nocapture`.
#[test]
#[ignore = "heavy: 60-minute input, about a minute of CPU and 2 GB of temporary disk"]
fn sixty_minutes_stereo_stays_under_512_mb() {
    let dir = temp_dir();
    let input = path_in(&dir, "long.wav");
    let rate = 44_100u32;
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&input, spec).unwrap();
        let minute = loud_music(rate, 60.0, 2);
        for m in 0..60 {
            let gain = 0.3 + 0.6 * (m % 7) as f32 / 7.0;
            let mut iw = w.get_i16_writer(minute[0].len() as u32 * 2);
            for (l, r) in minute[0].iter().zip(&minute[1]) {
                iw.write_sample(((l * gain).clamp(-1.0, 1.0) * 32767.0) as i16);
                iw.write_sample(((r * gain).clamp(-1.0, 1.0) * 32767.0) as i16);
            }
            iw.flush().unwrap();
        }
        w.finalize().unwrap();
    }
    // Reset the high-water mark so that generating the input does not count.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_bytes().unwrap();
    let out = path_in(&dir, "long_master.wav");
    let p = params(Style::Standard, None, OutputFormat::Wav { bit_depth: 16 });
    let t = std::time::Instant::now();
    let report = master(&input, &out, &p).unwrap();
    let peak = peak_rss_bytes().unwrap();
    eprintln!(
        "60 min: {:.1} s wall ({:.0}x real time), peak RSS {} MB (before mastering {} MB), \
         {:.2} LUFS, {:.2} dBTP, stages {:?}",
        t.elapsed().as_secs_f64(),
        3600.0 / t.elapsed().as_secs_f64(),
        peak >> 20,
        before >> 20,
        report.after.lufs,
        report.after.true_peak_db,
        report.stage_seconds
    );
    assert!(peak < 512 << 20, "peak RSS {} MB", peak >> 20);
    assert!((report.after.lufs + 14.0).abs() <= 0.1);
    assert!(report.after.true_peak_db <= -1.0);
    assert!((report.duration_sec - 3600.0).abs() < 1e-6);
}

/// ffmpeg's `ebur128=peak=true` reading of `path`: (integrated LUFS, true peak dBTP).
fn ffmpeg_ebur128(path: &Path) -> (f64, f64) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("MAGIC_MASTER_TEST_MUSIC_DIR is set but ffmpeg cannot run: install ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap_or("");
    let value = |key: &str| -> f64 {
        summary
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in ffmpeg's summary: {summary}"))
    };
    (value("I:"), value("Peak:"))
}

/// Real recordings (docs/QUALITY.md §5): Debian's frozen-bubble-data, fetched by the top-level
/// `scripts/fetch-test-music.sh` (run by `scripts/test.sh`, which sets
/// `MAGIC_MASTER_TEST_MUSIC_DIR`). Every style on each long track, the output formats
/// rotated, each output checked with the ebur128 crate and with ffmpeg's
/// `ebur128=peak=true`. Skipped (and passing) when the variable is unset.
#[test]
fn real_music_meets_the_delivery_bounds() {
    let Ok(dir) = std::env::var("MAGIC_MASTER_TEST_MUSIC_DIR") else {
        eprintln!("real_music: skipped (MAGIC_MASTER_TEST_MUSIC_DIR is not set)");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("frozen-mainzik-") && n.ends_with(".ogg"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no frozen-mainzik-*.ogg in {dir}");
    let formats = [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
        OutputFormat::Mp3 { bitrate_kbps: 128 },
    ];
    let tmp = temp_dir();
    let (mut worst_error, mut highest_peak) = (0.0f64, f64::NEG_INFINITY);
    let mut k = 0;
    for input in &files {
        let input_corr = crate::analyze_file(input).unwrap().stereo_correlation;
        for style in Style::ALL {
            let format = formats[k % formats.len()];
            k += 1;
            let out = path_in(&tmp, &format!("o.{}", format.extension()));
            let p = params(style, None, format);
            let report = master(input, &out, &p).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_delivered(&out, &p, &report);
            let (lufs, peak) = ffmpeg_ebur128(&out);
            let name = input.file_name().unwrap_or_default().to_string_lossy();
            eprintln!(
                "real_music {name} {style} {format:?}: {:.2} -> ffmpeg {lufs:.2} LUFS \
                 (target {}), true peak {peak:.2} dBTP",
                report.before.lufs, p.target_lufs
            );
            // ffmpeg prints one decimal: the bound allows for its rounding.
            assert!(
                (lufs - p.target_lufs).abs() <= 0.1 + 0.05,
                "{name} {style}: ffmpeg reads {lufs} LUFS"
            );
            assert!(
                peak <= p.true_peak_db + 0.05,
                "{name} {style}: ffmpeg TP {peak}"
            );
            worst_error = worst_error.max((lufs - p.target_lufs).abs());
            highest_peak = highest_peak.max(peak);
            if StyleParams::of(style).width == 1.0 {
                let corr = crate::analyze_file(&out).unwrap().stereo_correlation;
                assert!(
                    (corr - input_corr).abs() <= 0.05,
                    "{name} {style}: correlation {input_corr:.3} -> {corr:.3}"
                );
            }
        }
    }
    eprintln!(
        "real_music: {k} masters, worst loudness error {worst_error:.2} LU, highest true peak \
         {highest_peak:.2} dBTP (ffmpeg)"
    );
}

/// Dense material converges in at most three limiter passes, in every style and format
/// (issue 11 item 3): the loudness model finds the gain without running the limiter, the
/// final encode pass checks it. Before the model, edm took 5–9 passes here.
#[test]
fn dense_material_converges_in_three_passes() {
    let dir = temp_dir();
    let input = wav_in(
        &dir,
        "in.wav",
        &loud_music(44_100, 10.0, 2),
        44_100,
        WavKind::Int(24),
    );
    let formats = [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
    ];
    let mut worst = 0;
    for (k, style) in Style::ALL.into_iter().enumerate() {
        let format = formats[k % formats.len()];
        let output = path_in(&dir, &format!("{}.{}", style.name(), format.extension()));
        let p = params(style, None, format);
        let (report, passes) = master_counting(&input, &output, &p);
        eprintln!("dense {style} {format:?}: {passes} limiter passes");
        assert_delivered(&output, &p, &report);
        assert!(
            passes <= MAX_PASSES,
            "{style} {format:?}: {passes} limiter passes"
        );
        worst = worst.max(passes);
    }
    // A hotter target: the style's limiter saturates and the model raises the drive (to
    // level 3 of 4 here; the top level's saturator, which the model does not predict, is
    // first needed near -7 LUFS on this material).
    let output = path_in(&dir, "hot.wav");
    let p = params(Style::Edm, Some(-8.0), OutputFormat::Wav { bit_depth: 24 });
    let (report, passes) = master_counting(&input, &output, &p);
    eprintln!("dense edm -8 LUFS: {passes} limiter passes");
    assert_delivered(&output, &p, &report);
    assert!(
        passes <= MAX_PASSES,
        "edm at -8 LUFS: {passes} limiter passes"
    );
    eprintln!("dense: at most {worst} limiter passes at the default targets");
}

/// The same on real music: a 30 s excerpt of the densest frozen-bubble track in every
/// style, and the whole track in edm (the case: 5–9 passes before the model).
/// Skipped (and passing) when `MAGIC_MASTER_TEST_MUSIC_DIR` is unset.
#[test]
fn real_music_converges_in_three_passes() {
    let Ok(dir) = std::env::var("MAGIC_MASTER_TEST_MUSIC_DIR") else {
        eprintln!("real_music: skipped (MAGIC_MASTER_TEST_MUSIC_DIR is not set)");
        return;
    };
    let track = Path::new(&dir).join("frozen-mainzik-1p.ogg");
    let (planes, rate) = decode_all(&track);
    let start = 60 * rate as usize;
    let end = start + 30 * rate as usize;
    let excerpt: Vec<Vec<f32>> = planes
        .iter()
        .map(|p| {
            p.get(start..end)
                .unwrap_or_else(|| panic!("{track:?} is too short"))
                .to_vec()
        })
        .collect();
    let tmp = temp_dir();
    let whole = path_in(&tmp, "edm.wav");
    let p = params(Style::Edm, None, OutputFormat::Wav { bit_depth: 16 });
    let (report, passes) = master_counting(&track, &whole, &p);
    eprintln!("real_music passes edm, whole track: {passes} limiter passes");
    assert_delivered(&whole, &p, &report);
    assert!(
        passes <= MAX_PASSES,
        "edm, whole track: {passes} limiter passes"
    );
    let input = wav_in(&tmp, "in.wav", &excerpt, rate, WavKind::Float);
    let formats = [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 320 },
        OutputFormat::Wav { bit_depth: 24 },
    ];
    for (k, style) in Style::ALL.into_iter().enumerate() {
        let format = formats[k % formats.len()];
        let output = path_in(&tmp, &format!("{}.{}", style.name(), format.extension()));
        let p = params(style, None, format);
        MODEL_MISS.with(|c| c.set(None));
        let (report, passes) = master_counting(&input, &output, &p);
        let miss = MODEL_MISS.with(Cell::get);
        eprintln!(
            "real_music passes {style} {format:?}: {passes} limiter passes, {:.3} LUFS, \
             written minus modelled {miss:?} LU",
            report.after.lufs
        );
        assert_delivered(&output, &p, &report);
        assert!(
            passes <= MAX_PASSES,
            "{style} {format:?}: {passes} limiter passes"
        );
        // The model's own error (MP3 adds the encoder's loss): within the delivery bound,
        // so one correction from it lands.
        if let (Some(miss), false) = (miss, matches!(format, OutputFormat::Mp3 { .. })) {
            assert!(
                miss.abs() <= 0.1,
                "{style}: the model is off by {miss:.3} LU"
            );
        }
    }
}

/// The processed track's peaks are detected once (issue 11 item 4): the loudness model is
/// built in pass B (no read of the track of its own), and the final pass's limiter takes
/// its peaks from the model's tile peaks. Masters still meet the target and the ceiling
/// (by the ebur128 crate and the reference meter).
#[test]
fn the_processed_track_is_detected_once() {
    let dir = temp_dir();
    let music = loud_music(44_100, 8.0, 2);
    let input = wav_in(&dir, "in.wav", &music, 44_100, WavKind::Int(24));
    for (style, format) in [
        (Style::Edm, OutputFormat::Wav { bit_depth: 16 }),
        (Style::Standard, OutputFormat::Flac { bit_depth: 16 }),
        (Style::Edm, OutputFormat::Mp3 { bitrate_kbps: 320 }),
    ] {
        let output = path_in(&dir, &format!("{}.{}", style.name(), format.extension()));
        let p = params(style, None, format);
        MODEL_READS.with(|c| c.set(0));
        STORED_PEAK_PASSES.with(|c| c.set(0));
        let (report, passes) = master_counting(&input, &output, &p);
        let reads = MODEL_READS.with(Cell::get);
        let stored = STORED_PEAK_PASSES.with(Cell::get);
        eprintln!(
            "detected once {style} {format:?}: {passes} limiter passes, {stored} on stored \
             peaks, {reads} model reads"
        );
        assert_delivered(&output, &p, &report);
        let (planes, _) = decode_all(&output);
        let tp = crate::testutil::reference_peak::reference_true_peak(&planes).dbtp();
        assert!(
            tp <= p.true_peak_db,
            "{style} {format:?}: reference TP {tp:.3}"
        );
        assert_eq!(
            reads, 0,
            "{style} {format:?}: the model read the track again"
        );
        assert!(passes >= 1, "{style} {format:?}: the limiter had no work");
        assert_eq!(
            stored, passes,
            "{style} {format:?}: a limiter pass detected the peaks again"
        );
    }
}

/// When the stages lower the level far below what pass B's exact detection reached
/// (out-of-phase bass, which edm's width stage removes, under in-phase hiss and bursts:
/// the search needs peaks many dB deeper), the model's peaks are refined from the track's
/// store, with no read of the whole track of its own, and the master still meets the
/// target and the ceiling (by the reference meter), in memory and spilled to disk.
#[test]
fn a_level_drop_beyond_pass_b_reach_refines_the_model() {
    let dir = temp_dir();
    let rate = 44_100;
    let n = 6 * rate as usize;
    let bass = sine(50.0, 0.9, rate, n);
    // In phase: quiet hiss and loud short bursts (the peaks the limiter will work on).
    let bursts = sine(1000.0, 0.5, rate, n);
    let every = rate as usize / 4;
    let hiss: Vec<f32> = pink_noise(0.03, n, 9)
        .iter()
        .zip(&bursts)
        .enumerate()
        .map(|(i, (h, b))| if i % every < every / 20 { h + b } else { *h })
        .collect();
    let planes = vec![
        bass.iter().zip(&hiss).map(|(b, h)| b + h).collect(),
        bass.iter().zip(&hiss).map(|(b, h)| -b + h).collect(),
    ];
    let input = wav_in(&dir, "in.wav", &planes, rate, WavKind::Float);
    let p = params(Style::Edm, None, OutputFormat::Wav { bit_depth: 24 });
    for budget in [MEMORY_BUDGET_BYTES, 0] {
        let output = path_in(&dir, &format!("out-{budget}.wav"));
        MODEL_READS.with(|c| c.set(0));
        MODEL_REFINEMENTS.with(|c| c.set(0));
        STORED_PEAK_PASSES.with(|c| c.set(0));
        LIMITER_PASSES.with(|c| c.set(0));
        let report = master_file_budgeted(
            &input,
            &output,
            &p,
            &MasteringStages,
            (&mut |_| {}, &std::sync::atomic::AtomicBool::new(false)),
            Limits {
                budget,
                ..Limits::default()
            },
        )
        .unwrap();
        let passes = LIMITER_PASSES.with(Cell::get);
        let drop = PROCESSING_DROP.with(Cell::get);
        let reads = MODEL_READS.with(Cell::get);
        let refinements = MODEL_REFINEMENTS.with(Cell::get);
        let stored = STORED_PEAK_PASSES.with(Cell::get);
        eprintln!(
            "budget {budget}: drop {drop:.2} dB, {reads} model reads, {refinements} \
             refinements, {passes} passes, {stored} stored"
        );
        // Pass B detected exactly PASS_B_REACH_DB over the gain the input asked for; the
        // stages took away more than that again.
        assert!(
            drop > 2.0 * PASS_B_REACH_DB,
            "the stages dropped only {drop:.2} dB"
        );
        assert_eq!(reads, 0, "the model read the track again");
        assert!(refinements >= 1, "the model was not refined");
        assert!(
            passes >= 1 && stored == passes,
            "{passes} passes, {stored} stored"
        );
        assert_delivered(&output, &p, &report);
        let (planes, _) = decode_all(&output);
        let tp = crate::testutil::reference_peak::reference_true_peak(&planes).dbtp();
        assert!(tp <= p.true_peak_db, "reference TP {tp:.3}");
    }
}

/// Most loudness-model predictions one master may ask for (issue 11 item 3: each search is
/// seeded from what earlier drive levels and searches measured). Measured on the dense
/// synthetic material below, WAV 16: before the seeding edm took 25 (three drive levels
/// from the linear gain, then a correction from the linear gain again), house_basic 11,
/// standard and hiphop 3; after it edm 11, house_basic 9, standard and hiphop 3. The bound
/// keeps 3 predictions of margin over the worst.
const MAX_PREDICTIONS: usize = 14;

/// Dense material (every style's limiter works, edm raises its drive levels) is solved on
/// the model in few predictions, and the masters still meet the target.
#[test]
fn the_model_search_takes_few_predictions() {
    let dir = temp_dir();
    let music = loud_music(44_100, 6.0, 2);
    let input = wav_in(&dir, "in.wav", &music, 44_100, WavKind::Int(24));
    let mut worst = 0;
    for style in Style::ALL {
        let format = OutputFormat::Wav { bit_depth: 16 };
        let output = path_in(&dir, &format!("{}.wav", style.name()));
        let p = params(style, None, format);
        PREDICTIONS.with(|c| c.set(0));
        let (report, _) = master_counting(&input, &output, &p);
        let predictions = PREDICTIONS.with(Cell::get);
        eprintln!("model search {style}: {predictions} predictions");
        assert_delivered(&output, &p, &report);
        worst = worst.max(predictions);
    }
    eprintln!("model search: at most {worst} predictions");
    assert!(
        worst <= MAX_PREDICTIONS,
        "{worst} predictions in one master (at most {MAX_PREDICTIONS})"
    );
}
