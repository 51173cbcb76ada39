//! Times the output encoders alone (dither, integer conversion, codec, file writing) on a
//! decoded track, next to the peer command-line encoders on the same audio, and prints one
//! line per format: `format, ours s, peer s, ratio, our bytes, peer bytes, peer`.
//!
//! `cargo run --release -p mastering --example encoder_bench -- TRACK.wav [runs [FORMAT]]`
//! (FORMAT: a prefix of the format names printed, e.g. `flac` or `wav16`)
//!
//! Decode a real track to 16-bit WAV first (`ffmpeg -i X.ogg -c:a pcm_s16le X.wav`): the
//! track is decoded once into memory, in the chain's 4096-frame blocks, so decoding is not
//! timed. Each encoder runs `runs` times (default 3) and the fastest run counts; times are
//! CPU seconds (user + system): ours from `/proc/thread-self/schedstat`, the peer's from
//! `/usr/bin/time`. Run it pinned to one core (`taskset -c 0`) for figures comparable to
//! the chain's `--json` stage times. Peers: `sox` (TPDF dither) for WAV, `flac -5` (its
//! default) and `flac -0` for FLAC, `lame -b 320 --cbr -q 7` (our settings) for MP3.
//!
//! The peers encode from a file, which they must also read; the 24-bit peers read the
//! 24-bit WAV our encoder wrote.

use mastering::OutputFormat;
use mastering::decode::Decoder;
use mastering::encode::create_encoder;
use std::path::Path;
use std::process::Command;

/// CPU time this thread has run, seconds (the kernel's scheduler statistics: ns).
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 * 1e-9)
}

/// User + system CPU seconds of `cmd args…`, or None when it cannot be run or fails.
fn peer_seconds(cmd: &str, args: &[&str]) -> Option<f64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "MMBENCH %U %S", cmd])
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "{cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().rev().find(|l| l.starts_with("MMBENCH"))?;
    let mut f = line.split_whitespace().skip(1).map(str::parse::<f64>);
    Some(f.next()?.ok()? + f.next()?.ok()?)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args.next().ok_or("usage: encoder_bench TRACK.wav [runs]")?;
    let runs: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let only = args.next();
    let mut dec = Decoder::open(Path::new(&input))?;
    let (rate, channels) = (dec.sample_rate(), dec.channels());
    let mut blocks = Vec::new();
    let mut block = Vec::new();
    while dec.read_block(&mut block)? > 0 {
        blocks.push(block.clone());
    }
    let frames: usize = blocks.iter().map(|b: &Vec<Vec<f32>>| b[0].len()).sum();
    let seconds = frames as f64 / f64::from(rate);
    println!("# {input}: {seconds:.1} s, {channels} ch, {rate} Hz; best of {runs} runs, CPU s");
    println!("format, ours s, peer s, ratio, our bytes, peer bytes, peer");
    let dir = tempfile::tempdir()?;
    let ours =
        |format: OutputFormat, name: &str| -> Result<(f64, u64), Box<dyn std::error::Error>> {
            let path = dir.path().join(name);
            let mut best = f64::INFINITY;
            for _ in 0..runs {
                let start = thread_cpu_seconds();
                let mut enc = create_encoder(&path, format, rate, channels)?;
                for b in &blocks {
                    enc.write(b)?;
                }
                enc.finish()?;
                best = best.min(thread_cpu_seconds() - start);
            }
            Ok((best, size(&path)))
        };
    let peer = |cmd: &str, args: &[&str], out: &Path| -> Option<(f64, u64)> {
        let mut best = f64::INFINITY;
        for _ in 0..runs {
            best = best.min(peer_seconds(cmd, args)?);
        }
        Some((best, size(out)))
    };
    let p = |name: &str| dir.path().join(name);
    let s = |path: &Path| path.to_string_lossy().into_owned();
    let (wav24, peer_wav, peer_out) = (p("ours24.wav"), p("peer.wav"), p("peer.out"));
    let flac = |level: &str, src: String| -> Vec<String> {
        let mut v: Vec<String> = vec!["-s".into(), "-f".into(), level.into(), src];
        v.extend(["-o".into(), s(&peer_out)]);
        v
    };
    let sox = |bits: &str, dither: bool| -> Vec<String> {
        let mut v = vec![input.clone(), "-b".into(), bits.into(), s(&peer_wav)];
        if dither {
            v.push("dither".into());
        }
        v
    };
    let lame: Vec<String> = ["--quiet", "-b", "320", "--cbr", "-q", "7"]
        .into_iter()
        .map(String::from)
        .chain([input.clone(), s(&peer_out)])
        .collect();
    let rows: Vec<(OutputFormat, &str, &str, Vec<String>, &Path)> = vec![
        (
            OutputFormat::Wav { bit_depth: 16 },
            "ours16.wav",
            "sox",
            sox("16", true),
            &peer_wav,
        ),
        (
            OutputFormat::Wav { bit_depth: 24 },
            "ours24.wav",
            "sox",
            sox("24", false),
            &peer_wav,
        ),
        (
            OutputFormat::Flac { bit_depth: 16 },
            "ours16.flac",
            "flac",
            flac("-5", input.clone()),
            &peer_out,
        ),
        (
            OutputFormat::Flac { bit_depth: 16 },
            "ours16.flac",
            "flac",
            flac("-0", input.clone()),
            &peer_out,
        ),
        (
            OutputFormat::Flac { bit_depth: 24 },
            "ours24.flac",
            "flac",
            flac("-5", s(&wav24)),
            &peer_out,
        ),
        (
            OutputFormat::Mp3 { bitrate_kbps: 320 },
            "ours.mp3",
            "lame",
            lame,
            &peer_out,
        ),
    ];
    // The 24-bit FLAC peer reads our 24-bit WAV.
    if only.is_some() {
        ours(OutputFormat::Wav { bit_depth: 24 }, "ours24.wav")?;
    }
    for (format, name, cmd, args, out) in rows {
        if only
            .as_ref()
            .is_some_and(|o| !format_name(format).starts_with(o.as_str()))
        {
            continue;
        }
        let (t, bytes) = ours(format, name)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let label = format!(
            "{cmd} {}",
            args.iter()
                .filter(|a| a.starts_with('-'))
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        );
        match peer(cmd, &args, out) {
            Some((pt, pbytes)) => println!(
                "{}, {t:.3}, {pt:.3}, {:.2}, {bytes}, {pbytes}, {label}",
                format_name(format),
                t / pt
            ),
            None => println!("{}, {t:.3}, -, -, {bytes}, -, {label}", format_name(format)),
        }
    }
    Ok(())
}

fn format_name(f: OutputFormat) -> String {
    match f {
        OutputFormat::Wav { bit_depth } => format!("wav{bit_depth}"),
        OutputFormat::Flac { bit_depth } => format!("flac{bit_depth}"),
        OutputFormat::Mp3 { bitrate_kbps } => format!("mp3-{bitrate_kbps}"),
    }
}
