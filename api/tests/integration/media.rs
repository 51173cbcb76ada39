//! What the service accepts as audio, end to end against the service run in this test
//! process (its embedded worker masters for real): the
//! duration cap at upload and while decoding, the shortest clips, file names of any length
//! and script, the analyze route's own limits.

use crate::common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A stereo 440 Hz tone of `seconds` encoded as FLAC by ffmpeg (a few KB a second). With
/// `piped`, ffmpeg writes to a pipe and cannot go back to fill in the length: the file
/// declares none, like any stream.
fn tone_flac(dir: &Path, seconds: u32, piped: bool) -> Vec<u8> {
    let path = dir.join(format!("tone-{seconds}-{piped}.flac"));
    let source = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
    let mut cmd = Command::new("timeout");
    cmd.args([
        "60", "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
    ])
    .args(["-i", &source, "-ac", "2", "-c:a", "flac"]);
    if piped {
        cmd.args(["-f", "flac", "pipe:1"])
            .stdout(std::fs::File::create(&path).unwrap());
    } else {
        cmd.arg(&path);
    }
    let status = cmd.status().expect("ffmpeg is installed");
    assert!(status.success(), "ffmpeg failed: {status}");
    std::fs::read(&path).unwrap()
}

/// Masters of today counted against quotas (refunded ones are not).
async fn masters_counted(env: &Env) -> i64 {
    query_one(
        env,
        "SELECT COUNT(*) FROM quota_usage WHERE refunded_at IS NULL",
    )
    .await
}

/// Over `MAX_DURATION_SECONDS`: a declared length is refused at upload (413 `too-long`,
/// fast, nothing queued or stored); a stream without one fails while decoding, at once and
/// for good, and the master it reserved counts.
#[tokio::test(flavor = "multi_thread")]
async fn audio_over_the_duration_cap_is_refused() {
    let env = Env::new(&[("MAX_DURATION_SECONDS", "20")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let declared = tone_flac(env.dir.path(), 30, false);
    let unknown = tone_flac(env.dir.path(), 30, true);
    assert!(declared.len() < 1024 * 1024, "{} bytes", declared.len());

    let started = Instant::now();
    let (status, body) = upload(&base, "/api/v2/master", Some(("long.flac", declared)), &[]).await;
    let took = started.elapsed();
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too-long", "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("30 s") && detail.contains("20 s"),
        "{detail}"
    );
    assert!(took < Duration::from_secs(2), "refused in {took:?}");
    assert_eq!(count_rows(&env, "master_jobs").await, 0, "no job row");
    assert_eq!(masters_counted(&env).await, 0);
    assert!(env.files_under("uploads").is_empty());

    let id = submit(&base, "stream.flac", unknown).await;
    let s = wait_final(&base, &id, Duration::from_secs(30)).await;
    assert_eq!(s["status"], "failed", "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("too long") && error.contains("20 s"),
        "{error}"
    );
    assert_eq!(s["attempts"], 1, "not retried: {s}");
    assert!(
        env.files_under("results").is_empty(),
        "{:?}",
        env.files_under("results")
    );
    assert_eq!(
        masters_counted(&env).await,
        1,
        "a failing upload is not free"
    );
}

/// From 0.5 s everything masters; shorter is refused at upload, never after queueing.
#[tokio::test(flavor = "multi_thread")]
async fn clips_from_half_a_second_master_and_shorter_ones_are_refused_at_upload() {
    let env = Env::new(&[]);
    let _api = env.spawn_app().await;
    let base = env.base_url();

    let (status, body) = upload(
        &base,
        "/api/v2/master",
        Some(("tiny.wav", wav_bytes(0.4))),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "too-short", "{body}");
    assert_eq!(count_rows(&env, "master_jobs").await, 0, "no job row");

    let mut ids = Vec::new();
    for seconds in [0.5, 1.0, 2.9] {
        ids.push((seconds, submit(&base, "clip.wav", wav_bytes(seconds)).await));
    }
    for (seconds, id) in ids {
        let s = wait_final(&base, &id, Duration::from_secs(60)).await;
        assert_eq!(s["status"], "done", "{seconds} s: {s}");
        let after = s["after_lufs"].as_f64().unwrap();
        assert!((after - -14.0).abs() <= 0.1, "{seconds} s: {after} LUFS");
        let peak = s["after"]["true_peak_db"].as_f64().unwrap();
        assert!(peak <= -1.0, "{seconds} s: true peak {peak}");
    }
}

/// A file name of 90 × "音" (270 bytes) masters on the first attempt: files are stored under
/// fixed names, and the name comes back in `Content-Disposition` (RFC 6266).
#[tokio::test(flavor = "multi_thread")]
async fn a_long_non_ascii_file_name_masters_and_downloads() {
    let env = Env::new(&[("JOB_MAX_ATTEMPTS", "1")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let base_name = "音".repeat(90);
    let id = submit(&base, &format!("{base_name}.wav"), wav_bytes(3.0)).await;
    let s = wait_final(&base, &id, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["attempts"], 1);

    let encoded = "%E9%9F%B3".repeat(90);
    let r = fetch(format!("{base}/api/master/result/{id}")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!(
            "attachment; filename=\"audio_mastered.wav\"; filename*=UTF-8''{encoded}_mastered.wav"
        )
        .as_str()
    );
    let body = r.bytes().await.unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(&body)).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let r = fetch(format!("{base}/api/master/preview/{id}?src=original")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("inline; filename=\"audio.wav\"; filename*=UTF-8''{encoded}.wav").as_str()
    );

    let stored: Vec<String> = ["uploads", "results"]
        .iter()
        .flat_map(|d| env.files_under(d))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored, ["original.wav", "result.wav"]);
}

/// `/api/v2/analyze` decodes whole files without login: it has a rate limit of its own and
/// the duration cap, declared or found while decoding. Mastering is not limited by it.
#[tokio::test(flavor = "multi_thread")]
async fn analyze_has_its_own_rate_limit_and_the_duration_cap() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("ANALYZE_RATE_LIMIT", "3"),
        ("MAX_DURATION_SECONDS", "20"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    for (name, bytes) in [
        ("declared.flac", tone_flac(env.dir.path(), 30, false)),
        ("stream.flac", tone_flac(env.dir.path(), 30, true)),
    ] {
        let (status, body) = upload(&base, "/api/v2/analyze", Some((name, bytes)), &[]).await;
        assert_eq!(status, 413, "{name}: {body}");
        assert_eq!(body["code"], "too-long", "{name}: {body}");
    }
    let (status, body) = upload(
        &base,
        "/api/v2/analyze",
        Some(("a.wav", wav_bytes(2.0))),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["lufs"].is_number(), "{body}");

    let r = client()
        .post(format!("{base}/api/v2/analyze"))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(wav_bytes(2.0)).file_name("a.wav"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate-limited", "{body}");

    // The same client may still master.
    submit(&base, "a.wav", wav_bytes(2.0)).await;
}
