use super::*;
use crate::testutil::*;

fn encode_to(
    path: &std::path::Path,
    format: OutputFormat,
    rate: u32,
    planes: &[Vec<f32>],
    block: usize,
) {
    let mut enc = create_encoder(path, format, rate, planes.len()).unwrap();
    let frames = planes[0].len();
    let mut start = 0;
    while start < frames {
        let end = (start + block).min(frames);
        let chunk: Vec<Vec<f32>> = planes.iter().map(|p| p[start..end].to_vec()).collect();
        enc.write(&chunk).unwrap();
        start = end;
    }
    enc.finish().unwrap();
}

/// What the quantiser makes of `planes` (interleaved order, as the encoders feed it).
fn quantized(planes: &[Vec<f32>], bits: u32) -> Vec<Vec<f32>> {
    let mut q = crate::dsp::dither::Ditherer::new(bits as u16, DITHER_SEED).unwrap();
    let scale = (1u64 << (bits - 1)) as f32;
    let mut out = vec![Vec::with_capacity(planes[0].len()); planes.len()];
    for n in 0..planes[0].len() {
        for (o, p) in out.iter_mut().zip(planes) {
            o.push(q.quantize_sample(p[n]) as f32 / scale);
        }
    }
    out
}

fn test_signal(rate: u32, secs: f64) -> Vec<Vec<f32>> {
    let n = (f64::from(rate) * secs) as usize;
    let l = sine(1000.0, 0.5, rate, n);
    let noise = pink_noise(0.3, n, 3);
    let r: Vec<f32> = l.iter().zip(&noise).map(|(a, b)| 0.5 * a + b).collect();
    vec![l, r]
}

#[test]
fn wav_and_flac_match_the_quantised_input_exactly() {
    let dir = temp_dir();
    let src = test_signal(44_100, 1.3);
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
    ] {
        let bits = match format {
            OutputFormat::Wav { bit_depth } | OutputFormat::Flac { bit_depth } => bit_depth,
            OutputFormat::Mp3 { .. } => unreachable!(),
        };
        let path = path_in(&dir, &format!("o{bits}.{}", format.extension()));
        // Odd block size: frames straddle the encoder's internal blocks.
        encode_to(&path, format, 44_100, &src, 1001);
        let (got, rate) = decode_all(&path);
        assert_eq!(rate, 44_100);
        let expected = quantized(&src, u32::from(bits));
        assert_eq!(got.len(), 2);
        for ch in 0..2 {
            assert_eq!(got[ch].len(), src[ch].len(), "{format:?} length");
            // Bit-exact against what the quantiser produced.
            assert!(
                got[ch] == expected[ch],
                "{format:?} ch{ch} differs from the quantised input"
            );
            // And within dither + rounding (1.5 LSB) of the float input.
            let lsb = 1.0 / (1u64 << (bits - 1)) as f32;
            let err = got[ch]
                .iter()
                .zip(&src[ch])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err <= 1.5 * lsb, "{format:?}: error {err}");
        }
    }
}

#[test]
fn flac_header_is_complete_and_shorter_than_one_block_works() {
    let dir = temp_dir();
    let path = path_in(&dir, "short.flac");
    let src = vec![sine(440.0, 0.25, 48_000, 1000)];
    encode_to(
        &path,
        OutputFormat::Flac { bit_depth: 24 },
        48_000,
        &src,
        300,
    );
    let info = crate::probe(&path).unwrap();
    assert_eq!(
        (info.sample_rate, info.channels, info.bits_per_sample),
        (48_000, 1, Some(24))
    );
    let d = info.duration_sec.unwrap();
    assert!((d - 1000.0 / 48_000.0).abs() < 1e-9, "duration {d}");
    let (got, _) = decode_all(&path);
    assert_eq!(got[0], quantized(&src, 24)[0]);
}

#[test]
fn multichannel_limits_are_clear_errors() {
    let dir = temp_dir();
    let err = create_encoder(
        &path_in(&dir, "a.mp3"),
        OutputFormat::Mp3 { bitrate_kbps: 320 },
        48_000,
        6,
    )
    .err()
    .unwrap();
    assert!(matches!(err, MasterError::Encode(_)) && err.to_string().contains("6 channels"));
    let err = create_encoder(
        &path_in(&dir, "a.flac"),
        OutputFormat::Flac { bit_depth: 16 },
        48_000,
        10,
    )
    .err()
    .unwrap();
    assert!(matches!(err, MasterError::Encode(_)));
    // 5.1 FLAC works.
    let path = path_in(&dir, "six.flac");
    let planes: Vec<Vec<f32>> = (0..6)
        .map(|c| sine(100.0 * (c + 1) as f64, 0.3, 48_000, 5000))
        .collect();
    encode_to(
        &path,
        OutputFormat::Flac { bit_depth: 16 },
        48_000,
        &planes,
        4096,
    );
    assert_eq!(decode_all(&path).0.len(), 6);
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

#[test]
fn mp3_keeps_length_level_and_waveform() {
    let dir = temp_dir();
    for (rate, channels, kbps) in [
        (44_100u32, 2usize, 320u32),
        (48_000, 1, 128),
        (44_100, 2, 192),
    ] {
        let src: Vec<Vec<f32>> = test_signal(rate, 2.0).into_iter().take(channels).collect();
        let path = path_in(&dir, &format!("{rate}_{channels}_{kbps}.mp3"));
        encode_to(
            &path,
            OutputFormat::Mp3 { bitrate_kbps: kbps },
            rate,
            &src,
            4096,
        );
        let info = crate::probe(&path).unwrap();
        assert_eq!(info.channels as usize, channels, "mono must stay mono");
        let (got, got_rate) = decode_all(&path);
        assert_eq!(got_rate, rate);
        for ch in 0..channels {
            // Gapless: the Info tag lets the decoder trim delay and padding.
            assert_eq!(got[ch].len(), src[ch].len(), "decoded MP3 length");
            let n = got[ch].len().min(src[ch].len());
            let level_db = 20.0 * (rms(&got[ch][..n]) / rms(&src[ch][..n])).log10();
            assert!(
                level_db.abs() < 0.2,
                "{kbps} kb/s: level changed by {level_db} dB"
            );
            let c = correlation(&got[ch][..n], &src[ch][..n]);
            assert!(c > 0.99, "{kbps} kb/s ch{ch}: correlation {c}");
        }
    }
}

#[test]
fn output_is_deterministic() {
    let dir = temp_dir();
    let src = test_signal(44_100, 1.0);
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Mp3 { bitrate_kbps: 192 },
    ] {
        let a = path_in(&dir, &format!("a.{}", format.extension()));
        let b = path_in(&dir, &format!("b.{}", format.extension()));
        encode_to(&a, format, 44_100, &src, 4096);
        encode_to(&b, format, 44_100, &src, 4096);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{format:?}"
        );
    }
}

#[test]
fn lossless_monitor_measures_exactly_what_the_file_decodes_to() {
    use crate::meter::{FastMeter, MeterMode};
    let dir = temp_dir();
    // Loud enough to reach full scale after dither, with overs clamped, and a 6 s programme
    // so LRA and the gates have something to measure.
    let mut src = test_signal(44_100, 6.0);
    for plane in &mut src {
        for v in plane.iter_mut() {
            *v *= 2.5;
        }
    }
    for format in [
        OutputFormat::Wav { bit_depth: 16 },
        OutputFormat::Wav { bit_depth: 24 },
        OutputFormat::Flac { bit_depth: 16 },
        OutputFormat::Flac { bit_depth: 24 },
    ] {
        let path = path_in(&dir, &format!("m.{}", format.extension()));
        let mut enc = create_encoder(&path, format, 44_100, 2).unwrap();
        assert!(enc.monitor(FastMeter::new(2, 44_100, MeterMode::FULL).unwrap()));
        for start in (0..src[0].len()).step_by(3001) {
            let end = (start + 3001).min(src[0].len());
            let chunk: Vec<Vec<f32>> = src.iter().map(|p| p[start..end].to_vec()).collect();
            enc.write(&chunk).unwrap();
        }
        let monitored = enc.take_monitor().unwrap();
        enc.finish().unwrap();
        assert_eq!(monitored.frames, src[0].len() as u64);
        let mut decoded = FastMeter::new(2, 44_100, MeterMode::FULL).unwrap();
        // Blocks as the encoder was fed: the meter's sums then run in the same order.
        let mut dec = crate::decode::Decoder::open_with_block(&path, 3001).unwrap();
        let mut block = Vec::new();
        while dec.read_block(&mut block).unwrap() > 0 {
            decoded.add_block(&block).unwrap();
        }
        // Bit for bit the same samples: the same numbers, not merely close ones.
        assert_eq!(monitored.meter.loudness(), decoded.loudness(), "{format:?}");
        assert!(
            decoded.loudness().sample_peak_db > -0.01,
            "{format:?} reaches full scale"
        );
    }
    let mp3 = path_in(&dir, "m.mp3");
    let mut enc = create_encoder(&mp3, OutputFormat::Mp3 { bitrate_kbps: 320 }, 44_100, 2).unwrap();
    assert!(!enc.monitor(FastMeter::new(2, 44_100, MeterMode::FULL).unwrap()));
    assert!(
        enc.take_monitor().is_none(),
        "MP3 must be decoded to be measured"
    );
}
