use super::*;
use crate::testutil::*;

fn stereo_sine(rate: u32, frames: usize, amp: f64) -> Vec<Vec<f32>> {
    vec![
        sine(997.0, amp, rate, frames),
        sine(441.0, amp, rate, frames),
    ]
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn integer_and_float_wavs_decode_to_full_scale_f32() {
    let dir = temp_dir();
    let src = stereo_sine(44_100, 20_000, 0.5);
    for (kind, tol) in [
        (WavKind::Int(8), 1.0 / 127.0),
        (WavKind::Int(16), 1.0 / 32767.0),
        (WavKind::Int(24), 1.0 / 8_388_607.0),
        (WavKind::Int(32), 1e-6),
        (WavKind::Float, 0.0),
    ] {
        let path = path_in(&dir, &format!("{kind:?}.wav"));
        write_wav(&path, &src, 44_100, kind);
        let (got, rate) = decode_all(&path);
        assert_eq!(rate, 44_100);
        assert_eq!(got.len(), 2);
        for ch in 0..2 {
            let err = max_abs_diff(&got[ch], &src[ch]);
            assert!(
                err <= tol as f32 * 1.01,
                "{kind:?} ch{ch}: error {err} > {tol}"
            );
        }
    }
}

#[test]
fn blocks_are_bounded_and_cover_every_frame() {
    let dir = temp_dir();
    let path = path_in(&dir, "a.wav");
    let frames = 10_000;
    write_wav(
        &path,
        &stereo_sine(48_000, frames, 0.3),
        48_000,
        WavKind::Int(16),
    );
    let mut dec = Decoder::open_with_block(&path, 1000).unwrap();
    let mut block = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let n = dec.read_block(&mut block).unwrap();
        if n == 0 {
            break;
        }
        assert!(block.iter().all(|p| p.len() == n));
        sizes.push(n);
    }
    assert_eq!(sizes.iter().sum::<usize>(), frames);
    assert!(sizes.iter().all(|&n| n == 1000));
    assert_eq!(dec.stats().frames, frames as u64);
    // Reading past the end keeps returning 0.
    assert_eq!(dec.read_block(&mut block).unwrap(), 0);
}

#[test]
fn non_finite_samples_become_zero_and_overs_are_kept() {
    let dir = temp_dir();
    let path = path_in(&dir, "f.wav");
    let mut l = sine(1000.0, 0.5, 48_000, 4800);
    l[10] = f32::NAN;
    l[11] = f32::INFINITY;
    l[12] = f32::NEG_INFINITY;
    l[100] = 1.8;
    l[101] = -2.5;
    write_wav(&path, &[l.clone()], 48_000, WavKind::Float);
    let mut dec = Decoder::open_with_block(&path, 8192).unwrap();
    let mut block = Vec::new();
    let n = dec.read_block(&mut block).unwrap();
    assert_eq!(n, 4800);
    assert_eq!(&block[0][10..13], &[0.0, 0.0, 0.0]);
    assert_eq!(block[0][100], 1.8);
    assert_eq!(block[0][101], -2.5);
    let s = dec.stats();
    assert_eq!(s.non_finite_samples, 3);
    assert_eq!(s.over_samples, 2);
}

#[test]
fn odd_rates_and_channel_counts_decode() {
    let dir = temp_dir();
    for (rate, channels) in [
        (11_025u32, 1usize),
        (96_000, 2),
        (48_000, 6),
        (8_000, 1),
        (192_000, 2),
    ] {
        let path = path_in(&dir, &format!("{rate}_{channels}.wav"));
        let planes: Vec<Vec<f32>> = (0..channels)
            .map(|c| sine(200.0 + 100.0 * c as f64, 0.4, rate, rate as usize / 2))
            .collect();
        write_wav(&path, &planes, rate, WavKind::Int(24));
        let info = probe(&path).unwrap();
        assert_eq!(info.sample_rate, rate);
        assert_eq!(info.channels as usize, channels);
        assert_eq!(info.bits_per_sample, Some(24));
        let d = info.duration_sec.unwrap();
        assert!((d - 0.5).abs() < 1e-3, "duration {d}");
        let (got, _) = decode_all(&path);
        assert_eq!(got.len(), channels);
        for (g, p) in got.iter().zip(&planes) {
            assert!(max_abs_diff(g, p) < 2e-7);
        }
    }
}

#[test]
fn out_of_range_rate_is_unsupported() {
    let dir = temp_dir();
    let path = path_in(&dir, "low.wav");
    write_wav(&path, &[vec![0.1; 4000]], 4_000, WavKind::Int(16));
    assert!(matches!(probe(&path), Err(MasterError::Unsupported(_))));
}

#[test]
fn empty_and_text_files_are_unsupported() {
    let dir = temp_dir();
    let empty = path_in(&dir, "empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let err = probe(&empty).unwrap_err();
    assert!(matches!(err, MasterError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("empty"));

    let text = path_in(&dir, "notes.wav");
    std::fs::write(
        &text,
        "This is not audio, just a text file renamed to .wav\n".repeat(50),
    )
    .unwrap();
    let err = probe(&text).unwrap_err();
    assert!(matches!(err, MasterError::Unsupported(_)), "{err:?}");
    assert!(err.is_permanent());

    let missing = path_in(&dir, "missing.wav");
    assert!(matches!(probe(&missing), Err(MasterError::Io(_))));
}

#[test]
fn header_only_wav_is_too_short() {
    let dir = temp_dir();
    let path = path_in(&dir, "h.wav");
    write_wav(&path, &[Vec::new(), Vec::new()], 44_100, WavKind::Int(16));
    let err = probe(&path).unwrap_err();
    assert!(
        matches!(
            err,
            MasterError::TooShort(_) | MasterError::Corrupt(_) | MasterError::Unsupported(_)
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_wav_keeps_the_readable_audio() {
    let dir = temp_dir();
    let path = path_in(&dir, "t.wav");
    let src = stereo_sine(44_100, 44_100, 0.5);
    write_wav(&path, &src, 44_100, WavKind::Int(16));
    let bytes = std::fs::read(&path).unwrap();
    // Cut in the middle of a frame, 60 % into the data.
    let cut = 44 + (bytes.len() - 44) * 6 / 10 + 1;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let mut dec = Decoder::open(&path).unwrap();
    let mut block = Vec::new();
    let mut total = 0;
    let mut first = Vec::new();
    while let Ok(n) = dec.read_block(&mut block) {
        if n == 0 {
            break;
        }
        if first.is_empty() {
            first = block[0].clone();
        }
        total += n;
    }
    let expected = (cut - 44) / 4;
    assert!(
        total <= expected && total + 4096 >= expected,
        "decoded {total} frames, {expected} were readable"
    );
    assert!(max_abs_diff(&first, &src[0][..first.len()]) < 1e-4);
}

#[test]
fn aiff_decodes() {
    let dir = temp_dir();
    let path = path_in(&dir, "a.aiff");
    let src = stereo_sine(48_000, 12_345, 0.5);
    write_aiff16(&path, &src, 48_000);
    let info = probe(&path).unwrap();
    assert_eq!(
        (info.sample_rate, info.channels, info.bits_per_sample),
        (48_000, 2, Some(16))
    );
    let (got, _) = decode_all(&path);
    for ch in 0..2 {
        assert!(max_abs_diff(&got[ch], &src[ch]) <= 1.01 / 32767.0);
    }
}

/// Writes `planes` (10 s stereo at 44.1 kHz) in `format` and returns the file's bytes.
fn encoded_bytes(dir: &tempfile::TempDir, name: &str, format: crate::OutputFormat) -> Vec<u8> {
    let path = path_in(dir, name);
    let src = stereo_sine(44_100, 441_000, 0.5);
    let mut encoder = crate::encode::create_encoder(&path, format, 44_100, 2).unwrap();
    encoder.write(&src).unwrap();
    encoder.finish().unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn probe_accepts_whole_files_and_refuses_truncated_ones() {
    use crate::OutputFormat;
    let dir = temp_dir();
    let formats = [
        ("a.wav", OutputFormat::Wav { bit_depth: 16 }),
        ("a.flac", OutputFormat::Flac { bit_depth: 16 }),
        ("a.mp3", OutputFormat::Mp3 { bitrate_kbps: 192 }),
    ];
    for (name, format) in formats {
        let bytes = encoded_bytes(&dir, name, format);
        let whole = path_in(&dir, &format!("whole_{name}"));
        std::fs::write(&whole, &bytes).unwrap();
        let info = probe(&whole).unwrap_or_else(|e| panic!("{name}: whole file refused: {e}"));
        let declared = info.duration_sec.expect("declared duration");
        assert!(
            (declared - 10.0).abs() < 0.1,
            "{name}: declares {declared} s"
        );

        // Keep 60 % of the file: the header still declares 10 s.
        let cut = path_in(&dir, &format!("cut_{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
        match probe(&cut) {
            Err(MasterError::Corrupt(msg)) => {
                assert!(msg.contains("truncated"), "{name}: {msg}")
            }
            other => panic!("{name}: truncated file gave {other:?}"),
        }
    }
}

#[test]
fn probe_refuses_a_header_with_a_few_frames() {
    // The header declares one second; only four frames follow it.
    let dir = temp_dir();
    let path = path_in(&dir, "short.wav");
    write_wav(
        &path,
        &stereo_sine(44_100, 44_100, 0.5),
        44_100,
        WavKind::Int(16),
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..44 + 16]).unwrap();
    assert!(matches!(probe(&path), Err(MasterError::Corrupt(_))));
}

/// Reads every block of `dec` into planes.
fn read_all(mut dec: Decoder) -> (Vec<Vec<f32>>, DecodeStats) {
    let mut out = vec![Vec::new(); dec.channels()];
    let mut block = Vec::new();
    while dec.read_block(&mut block).unwrap() > 0 {
        for (o, b) in out.iter_mut().zip(&block) {
            o.extend_from_slice(b);
        }
    }
    (out, dec.stats())
}

/// The 16-bit PCM fast path gives bit for bit what symphonia's PCM decoder gives (mono,
/// stereo, 5.1, full-scale values, a file cut in the middle of a frame).
#[test]
fn pcm16_fast_path_matches_the_symphonia_decoder() {
    let dir = temp_dir();
    for channels in [1usize, 2, 6] {
        let mut planes: Vec<Vec<f32>> = (0..channels)
            .map(|c| white_noise(0.9, 30_000, 7 + c as u64))
            .collect();
        planes[0][5] = 1.0;
        planes[0][6] = -1.0;
        let path = path_in(&dir, &format!("pcm16_{channels}.wav"));
        write_wav(&path, &planes, 44_100, WavKind::Int(16));
        // Cut the file 3 bytes into a frame: the partial frame is dropped by both paths.
        let bytes = std::fs::read(&path).unwrap();
        let cut = path_in(&dir, &format!("pcm16_{channels}_cut.wav"));
        std::fs::write(&cut, &bytes[..bytes.len() - 2 * channels * 100 - 3]).unwrap();
        for file in [&path, &cut] {
            let fast = Decoder::open(file).unwrap();
            assert!(fast.pcm16, "{channels} channels: fast path taken");
            let mut slow = Decoder::open(file).unwrap();
            slow.pcm16 = false;
            let ((a, stats_a), (b, stats_b)) = (read_all(fast), read_all(slow));
            assert_eq!(a, b, "{channels} channels, {}", file.display());
            assert_eq!(stats_a, stats_b);
            assert!(a[0].len() >= 29_898, "{} frames", a[0].len());
        }
    }
}

#[test]
fn the_duration_limit_shrinks_for_many_channels_and_high_rates() {
    // The limit is in seconds of audio up to stereo at 96 kHz; past that the temp disk a
    // job spills grows with channels × rate, so the same limit admits proportionally less.
    let dir = temp_dir();
    let stereo = path_in(&dir, "stereo_48k.wav");
    let planes: Vec<Vec<f32>> = (0..2).map(|_| sine(440.0, 0.4, 48_000, 24_000)).collect();
    write_wav(&stereo, &planes, 48_000, WavKind::Int(16));
    let mut dec = Decoder::open(&stereo).unwrap();
    assert!(
        dec.limit_duration(1.0).is_ok(),
        "0.5 s of stereo at 48 kHz under a 1 s limit"
    );

    // 0.5 s of 8 channels at 192 kHz holds as many samples as 4 s of stereo at 96 kHz.
    let wide = path_in(&dir, "octo_192k.wav");
    let planes: Vec<Vec<f32>> = (0..8).map(|_| sine(440.0, 0.4, 192_000, 96_000)).collect();
    write_wav(&wide, &planes, 192_000, WavKind::Int(16));
    let mut dec = Decoder::open(&wide).unwrap();
    let err = dec.limit_duration(2.0).unwrap_err();
    assert!(matches!(err, MasterError::TooLong(_)), "{err:?}");
    assert!(err.to_string().contains("8 channels at 192000 Hz"), "{err}");
    let mut dec = Decoder::open(&wide).unwrap();
    assert!(
        dec.limit_duration(4.5).is_ok(),
        "4 s stereo-96k equivalent under 4.5 s"
    );
}
