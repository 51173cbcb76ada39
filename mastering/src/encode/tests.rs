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

/// What the quantiser makes of `planes`, as integers (the samples the encoder writes and
/// its monitor meters).
fn quantized_ints(planes: &[Vec<f32>], bits: u32) -> Vec<Vec<i32>> {
    let mut q = crate::dsp::dither::Ditherer::new(bits as u16, DITHER_SEED).unwrap();
    let mut out = Vec::new();
    q.quantize_planar(planes, &mut out);
    out
}

/// Decodes `path` with ffmpeg, checking every frame's CRC, to planar integers of `bits`
/// bits (ffmpeg's 32-bit output shifted back).
fn ffmpeg_decode(path: &std::path::Path, channels: usize, bits: u32) -> Vec<Vec<i32>> {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-xerror",
            "-err_detect",
            "crccheck+bitstream",
            "-i",
        ])
        .arg(path)
        .args(["-f", "s32le", "-"])
        .output()
        .expect("ffmpeg cannot run: install ffmpeg (the encoder tests decode with it)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg rejects {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut planes = vec![Vec::new(); channels];
    for (i, s) in out.stdout.chunks_exact(4).enumerate() {
        let v = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        planes[i % channels].push(v >> (32 - bits));
    }
    planes
}

/// `flac -t` (the reference decoder, which checks every CRC): None when flac is not
/// installed, else whether it accepts the file.
fn flac_cli_accepts(path: &std::path::Path) -> Option<bool> {
    let out = std::process::Command::new("flac")
        .args(["-t", "-s"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("flac -t: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(out.status.success())
}

/// Signals that drive every path of the FLAC frame coder: silence (constant subframes),
/// full-scale white noise (verbatim), left = −right at full scale (the widest side
/// channel), a full-scale square wave (the largest fixed-predictor residuals), a
/// near-Nyquist sine, and music-like pink noise (fixed predictors, stereo decorrelation).
fn coder_signals(rate: u32, channels: usize) -> Vec<Vec<f32>> {
    let part = (rate / 4) as usize;
    (0..channels)
        .map(|c| {
            let sign = if c % 2 == 0 { 1.0 } else { -1.0 };
            let mut x = vec![0.0f32; part];
            x.extend(
                white_noise(1.0, part, 10 + c as u64)
                    .iter()
                    .map(|v| v.clamp(-1.0, 1.0)),
            );
            x.extend(sine(997.0, 1.0, rate, part).iter().map(|v| sign * v));
            x.extend((0..part).map(|n| if (n / 37) % 2 == 0 { 1.0 } else { -1.0 }));
            x.extend(sine(0.49 * f64::from(rate), 0.9, rate, part));
            x.extend(pink_noise(0.3, 3 * part, 20 + c as u64));
            // One short frame at the end: not a multiple of the block size.
            x.extend(sine(200.0, 0.5, rate, 777));
            x
        })
        .collect()
}

/// Every FLAC file decodes, by ffmpeg (checking CRCs) and by `flac -t`, to exactly the
/// samples the encoder quantised: every style of frame (constant, verbatim, fixed, every
/// stereo assignment, the short last frame), 16 and 24 bits, mono, stereo and 5.1, sample
/// rates with and without a header code, more than 128 frames (multi-byte frame numbers).
#[test]
fn flac_round_trips_bit_exact_through_ffmpeg_and_flac() {
    let dir = temp_dir();
    let mut flac_checked = 0;
    for (rate, channels, bits) in [
        (44_100u32, 2usize, 16u32),
        (44_100, 2, 24),
        (48_000, 1, 16),
        (11_025, 6, 24),
        (96_000, 2, 24),
    ] {
        let src = coder_signals(rate, channels);
        let format = OutputFormat::Flac {
            bit_depth: bits as u16,
        };
        let path = path_in(&dir, &format!("rt_{rate}_{channels}_{bits}.flac"));
        encode_to(&path, format, rate, &src, 3001);
        let want = quantized_ints(&src, bits);
        let got = ffmpeg_decode(&path, channels, bits);
        for (c, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), w.len(), "{rate} Hz {bits} bits ch{c}: length");
            if let Some(n) = g.iter().zip(w).position(|(a, b)| a != b) {
                panic!(
                    "{rate} Hz {bits} bits ch{c}: sample {n} is {} not {}",
                    g[n], w[n]
                );
            }
        }
        // symphonia (the service's own decoder) reads the same samples.
        let (ours, got_rate) = decode_all(&path);
        assert_eq!(got_rate, rate);
        assert!(
            ours == quantized(&src, bits),
            "{rate} Hz {bits} bits: symphonia"
        );
        if let Some(ok) = flac_cli_accepts(&path) {
            assert!(ok, "flac -t rejects {}", path.display());
            flac_checked += 1;
        }
    }
    if flac_checked == 0 {
        eprintln!("flac -t: skipped (the flac command is not installed)");
    }
    // Long enough for frame numbers of two bytes (≥ 128 frames of 4096).
    let src = test_signal(44_100, 13.0);
    let path = path_in(&dir, "long.flac");
    encode_to(
        &path,
        OutputFormat::Flac { bit_depth: 16 },
        44_100,
        &src,
        4096,
    );
    assert!(ffmpeg_decode(&path, 2, 16) == quantized_ints(&src, 16));
    if let Some(ok) = flac_cli_accepts(&path) {
        assert!(ok, "flac -t rejects {}", path.display());
    }
}

/// The frame CRCs are checked by the decode above: a flipped bit in the audio must make
/// ffmpeg fail (so a CRC the coder got wrong would too).
#[test]
fn flac_corruption_is_caught_by_the_decode_check() {
    let dir = temp_dir();
    let src = test_signal(44_100, 1.0);
    let path = path_in(&dir, "c.flac");
    encode_to(
        &path,
        OutputFormat::Flac { bit_depth: 16 },
        44_100,
        &src,
        4096,
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-xerror",
            "-err_detect",
            "crccheck+bitstream",
            "-i",
        ])
        .arg(&path)
        .args(["-f", "s32le", "-"])
        .output()
        .expect("ffmpeg cannot run: install ffmpeg");
    assert!(!out.status.success() || !out.stderr.is_empty());
}

/// Compression stays reasonable: music-like material (pink noise and a tone) takes well
/// under its PCM size, and no more than 25 % more than `flac -5` (LPC) when flac is
/// installed (measured on the dense real track: 21 % more).
#[test]
fn flac_size_is_bounded() {
    let dir = temp_dir();
    let src = test_signal(44_100, 10.0);
    let path = path_in(&dir, "s.flac");
    encode_to(
        &path,
        OutputFormat::Flac { bit_depth: 16 },
        44_100,
        &src,
        4096,
    );
    let ours = std::fs::metadata(&path).unwrap().len();
    let pcm = (src[0].len() * 2 * 2) as u64;
    assert!(ours < pcm * 3 / 4, "{ours} bytes for {pcm} of PCM");
    let wav = path_in(&dir, "s.wav");
    encode_to(
        &wav,
        OutputFormat::Wav { bit_depth: 16 },
        44_100,
        &src,
        4096,
    );
    let reference = path_in(&dir, "ref.flac");
    let Ok(out) = std::process::Command::new("flac")
        .args(["-s", "-f", "-5", "-o"])
        .arg(&reference)
        .arg(&wav)
        .output()
    else {
        eprintln!("flac -5 comparison: skipped (the flac command is not installed)");
        return;
    };
    assert!(out.status.success());
    let theirs = std::fs::metadata(&reference).unwrap().len();
    assert!(
        ours as f64 <= 1.25 * theirs as f64,
        "{ours} bytes, flac -5 {theirs}"
    );
}

/// Every WAV layout (mono, stereo, three channels; 16 and 24 bits) holds exactly the
/// quantised samples, as symphonia and ffmpeg read them.
#[test]
fn wav_packs_every_layout_bit_exact() {
    let dir = temp_dir();
    for (channels, bits) in [(1usize, 16u32), (1, 24), (2, 24), (3, 16), (3, 24)] {
        let src: Vec<Vec<f32>> = (0..channels)
            .map(|c| {
                let mut x = sine(300.0 * (c + 1) as f64, 0.9, 48_000, 5000);
                // Full scale both ways: the sign bytes of every width.
                x.extend([1.0, -1.0, 0.5, -0.5, 0.0]);
                x
            })
            .collect();
        let format = OutputFormat::Wav {
            bit_depth: bits as u16,
        };
        let path = path_in(&dir, &format!("w{channels}_{bits}.wav"));
        encode_to(&path, format, 48_000, &src, 1001);
        let (got, rate) = decode_all(&path);
        assert_eq!(rate, 48_000);
        assert!(got == quantized(&src, bits), "{channels} ch {bits} bits");
        assert!(
            ffmpeg_decode(&path, channels, bits) == quantized_ints(&src, bits),
            "{channels} ch {bits} bits: ffmpeg"
        );
    }
}
