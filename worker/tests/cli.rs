//! The worker's command line, run as a process (this also makes cargo build the binary
//! that the API's multi-process tests start).

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_magic-master-worker"))
}

fn write_wav(path: &std::path::Path, seconds: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(seconds * 44_100.0) as usize {
        let t = i as f64 / 44_100.0;
        let s = 0.1 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
            + 0.05 * (2.0 * std::f64::consts::PI * 97.0 * t).sin();
        let v = (s * 32767.0) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    write_wav(&input, 4.0);
    let out = dir.path().join("out.wav");
    for (args, needle) in [
        (vec!["--style", "foo"], "unknown style"),
        (vec!["--target-lufs", "-100"], "target_lufs"),
        (vec!["--format", "exe"], "out_format"),
        (vec!["--bit-depth", "8"], "bit_depth"),
    ] {
        let o = bin()
            .arg("master")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(&args)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let o = bin()
        .args(["master", "/nonexistent.wav", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    assert!(!out.exists());
    let o = bin().arg("frobnicate").output().unwrap();
    assert!(!o.status.success());
}

#[test]
fn master_and_analyze_print_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    write_wav(&input, 6.0);
    let out = dir.path().join("out.flac");
    let o = bin()
        .arg("master")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--target-lufs", "-16", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "flac");
    assert_eq!(v["target_lufs"], -16.0);
    let after = v["after"]["lufs"].as_f64().unwrap();
    assert!((after - -16.0).abs() <= 0.5, "{after}");
    assert!(v["after"]["true_peak_db"].as_f64().unwrap() <= -1.0 + 0.1);
    assert!(out.metadata().unwrap().len() > 1000);

    let o = bin()
        .arg("analyze")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(a["sample_rate"], 44_100);
    assert!((a["lufs"].as_f64().unwrap() - -16.0).abs() <= 0.5);
}
