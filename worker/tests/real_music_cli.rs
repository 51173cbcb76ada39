//! Hard real recordings through the command line, as a user or checker runs it: Debian's
//! frozen-bubble-data music (fetched by `scripts/fetch-test-music.sh`, never committed),
//! made harder with ffmpeg — one excerpt boosted 10 dB into float WAV so its peaks pass
//! 0 dBFS (overs), one with a quiet first half 16 dB down (a very wide loudness range).
//! Every style × wav16, wav24, flac and mp3, each output read back by an independent meter,
//! ffmpeg's `ebur128=peak=true`. Skipped (and passing) when `MAGIC_MASTER_TEST_MUSIC_DIR`
//! is unset; `scripts/test.sh` sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

const STYLES: [(&str, f64); 8] = [
    ("standard", -14.0),
    ("edm", -9.0),
    ("hiphop", -13.0),
    ("classical", -18.0),
    ("podcast", -16.0),
    ("lofi", -18.0),
    ("house_basic", -10.0),
    ("dry_vocal", -14.0),
];

/// (label, file extension, extra CLI arguments)
const FORMATS: [(&str, &str, &[&str]); 4] = [
    ("wav16", "wav", &["--format", "wav", "--bit-depth", "16"]),
    ("wav24", "wav", &["--format", "wav", "--bit-depth", "24"]),
    ("flac24", "flac", &["--format", "flac", "--bit-depth", "24"]),
    (
        "mp3-320",
        "mp3",
        &["--format", "mp3", "--mp3-bitrate", "320"],
    ),
];

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("MAGIC_MASTER_TEST_MUSIC_DIR is set but ffmpeg cannot run: install ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg's `ebur128=peak=true` summary of `path`: (integrated LUFS, LRA LU, true peak dBTP).
fn ffmpeg_ebur128(path: &Path) -> (f64, f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap_or("");
    let value = |key: &str| -> f64 {
        summary
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in ffmpeg's summary of {path:?}: {summary}"))
    };
    (value("I:"), value("LRA:"), value("Peak:"))
}

/// The two hard inputs, made from the fetched recordings in `dir` into `tmp`.
fn hard_inputs(dir: &Path, tmp: &Path) -> Vec<(&'static str, PathBuf)> {
    let track = |name: &str| {
        let p = dir.join(name);
        assert!(
            p.exists(),
            "{p:?} is missing: run scripts/fetch-test-music.sh"
        );
        p.to_string_lossy().into_owned()
    };
    let overs = tmp.join("overs.wav");
    ffmpeg(&[
        "-i",
        &track("frozen-mainzik-1p.ogg"),
        "-t",
        "40",
        "-af",
        "volume=10dB",
        "-c:a",
        "pcm_f32le",
        overs.to_str().expect("utf-8 temp path"),
    ]);
    let wide = tmp.join("wide_lra.wav");
    ffmpeg(&[
        "-i",
        &track("frozen-mainzik-2p.ogg"),
        "-t",
        "40",
        "-af",
        "volume='if(lt(t,20),0.16,1)':eval=frame",
        "-c:a",
        "pcm_s24le",
        wide.to_str().expect("utf-8 temp path"),
    ]);
    vec![("overs", overs), ("wide-lra", wide)]
}

#[test]
fn hard_real_recordings_meet_loudness_and_ceiling_in_every_style_and_format() {
    let Ok(dir) = std::env::var("MAGIC_MASTER_TEST_MUSIC_DIR") else {
        eprintln!("real_music_cli: skipped (MAGIC_MASTER_TEST_MUSIC_DIR is not set)");
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let inputs = hard_inputs(Path::new(&dir), tmp.path());

    // The inputs are what they claim to be.
    let (_, _, overs_peak) = ffmpeg_ebur128(&inputs[0].1);
    assert!(
        overs_peak > 3.0,
        "overs input peaks at only {overs_peak} dBTP"
    );
    let (_, wide_lra, _) = ffmpeg_ebur128(&inputs[1].1);
    assert!(wide_lra > 12.0, "wide-LRA input has LRA {wide_lra} LU");

    let ceiling = -1.0;
    let (mut worst_error, mut highest_peak, mut runs) = (0.0f64, f64::NEG_INFINITY, 0);
    let mut failures = Vec::new();
    for (label, input) in &inputs {
        for (style, target) in STYLES {
            for (format, ext, args) in FORMATS {
                let out = tmp.path().join(format!("{label}-{style}-{format}.{ext}"));
                let o = Command::new(env!("CARGO_BIN_EXE_magic-master-worker"))
                    .arg("master")
                    .arg(input)
                    .arg("-o")
                    .arg(&out)
                    .args(["--style", style, "--json"])
                    .args(args)
                    .output()
                    .expect("worker binary runs");
                assert!(
                    o.status.success(),
                    "{label} {style} {format}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let (lufs, _, peak) = ffmpeg_ebur128(&out);
                eprintln!(
                    "real_music_cli {label} {style} {format}: ffmpeg {lufs:.1} LUFS (target \
                     {target}), {peak:.1} dBTP"
                );
                // ffmpeg prints one decimal: 0.05 allows for its rounding, nothing more.
                if (lufs - target).abs() > 0.1 + 0.05 {
                    failures.push(format!("{label} {style} {format}: {lufs} LUFS"));
                }
                if peak > ceiling + 0.05 {
                    failures.push(format!("{label} {style} {format}: true peak {peak}"));
                }
                worst_error = worst_error.max((lufs - target).abs());
                highest_peak = highest_peak.max(peak);
                runs += 1;
                std::fs::remove_file(&out).expect("remove output");
            }
        }
    }
    eprintln!(
        "real_music_cli: {runs} masters (overs input peaks {overs_peak:.1} dBTP, wide input LRA \
         {wide_lra:.1} LU); worst loudness error {worst_error:.2} LU, highest true peak \
         {highest_peak:.1} dBTP (ffmpeg)"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
