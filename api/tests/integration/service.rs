//! End-to-end tests on a temporary data directory, real HTTP, real SQLite: the API run in
//! this test process, and the release binaries where the process matters (worker
//! processes SIGKILLed, SIGTERMed or several at once, an API restart, resident memory,
//! start-up refusal).

use crate::common;

use common::*;
use std::time::Duration;

/// Upload → done → download a decodable file, twice; SSE ends with `done`.
#[tokio::test(flavor = "multi_thread")]
async fn upload_master_and_download_twice() {
    let env = Env::new(&[]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let id = submit(&base, "My Song.wav", wav_bytes(8.0)).await;

    // Follow the SSE stream to its end: the last event is the final status.
    let sse = fetch(format!("{base}/api/master/progress/{id}")).await;
    assert_eq!(
        sse.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = tokio::time::timeout(Duration::from_secs(60), sse.text())
        .await
        .expect("SSE stream closes after the job ends")
        .unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(!events.is_empty());
    let last = events.last().unwrap();
    assert_eq!(last["status"], "done", "{last}");
    for pair in events.windows(2) {
        assert_ne!(pair[0], pair[1], "one event per change");
    }

    let s = status(&base, &id).await;
    assert_eq!(s["status"], "done");
    assert_eq!(s["progress"], 100);
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["style"], "standard");
    assert_eq!(s["out_format"], "wav");
    assert!(s["error"].is_null());
    let after = s["after_lufs"].as_f64().unwrap();
    assert!((after - -14.0).abs() <= 0.5, "after_lufs {after}");
    assert_eq!(s["before"]["sample_rate"], 44_100);
    assert_eq!(s["before"]["channels"], 2);
    for key in ["created_at", "started_at", "finished_at"] {
        chrono::DateTime::parse_from_rfc3339(s[key].as_str().unwrap()).unwrap();
    }

    let mut bodies = Vec::new();
    for _ in 0..2 {
        let r = fetch(format!("{base}/api/master/result/{id}")).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["content-type"], "audio/wav");
        assert_eq!(
            r.headers()["content-disposition"],
            "attachment; filename=\"My Song_mastered.wav\"; \
             filename*=UTF-8''My%20Song_mastered.wav"
        );
        bodies.push(r.bytes().await.unwrap().to_vec());
    }
    assert_eq!(bodies[0], bodies[1]);
    let reader = hound::WavReader::new(std::io::Cursor::new(&bodies[0])).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));
    let seconds = f64::from(reader.duration()) / 44_100.0;
    assert!((seconds - 8.0).abs() < 0.05, "duration {seconds}");

    for src in ["original", "mastered"] {
        let r = fetch(format!("{base}/api/master/preview/{id}?src={src}")).await;
        assert_eq!(r.status().as_u16(), 200, "{src}");
        assert_eq!(r.headers()["content-type"], "audio/wav");
    }
    let row = job_row(&env, &id).await;
    assert_eq!(row.completions, 1);
}

/// What is sent, the file, the form fields and the expected status.
type BadCase = (
    String,
    Option<(&'static str, Vec<u8>)>,
    Vec<(&'static str, &'static str)>,
    u16,
);

/// Bad input: 4xx with `detail`, nothing queued, no file left behind.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_rejected_and_leaves_nothing() {
    // Process-level: measures the API process's resident memory.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("MAX_UPLOAD_MB", "2")]);
    let api = env.start_api().await;
    let base = env.base_url();
    let wav = wav_bytes(5.0);

    let mut cases: Vec<BadCase> = vec![
        ("empty file".into(), Some(("a.wav", vec![])), vec![], 400),
        (
            "text named .wav".into(),
            Some(("notes.wav", b"hello, this is not audio at all\n".repeat(50))),
            vec![],
            415,
        ),
    ];
    for field in [
        ("style", "foo"),
        ("target_lufs", "-100"),
        ("target_lufs", "abc"),
        ("out_format", "exe"),
    ] {
        let what = format!("{}={}", field.0, field.1);
        cases.push((what, Some(("a.wav", wav.clone())), vec![field], 400));
    }
    cases.push(("missing file".into(), None, vec![("style", "edm")], 400));
    for (what, file, fields, expected) in cases {
        let (status, body) = upload(&base, "/api/v2/master", file, &fields).await;
        let detail = body["detail"].as_str().unwrap_or("");
        assert_eq!(status, expected, "{what}: {body}");
        assert!(!detail.is_empty(), "{what}: no detail in {body}");
        assert!(body["code"].is_string(), "{what}: no code in {body}");
        eprintln!("{what}: {status} {detail}");
    }

    // Over the limit with a Content-Length (3 MB against 2 MB): answered 413 at once. Sent
    // over a raw socket that reads while it writes: the server answers before the body is
    // in, and an HTTP client that only reads after sending would see the closed connection
    // (broken pipe) instead of the answer.
    let (status, body) = oversized_upload(env.port, 3 * 1024 * 1024, Framing::ContentLength);
    assert_eq!(status, 413, "oversized upload with Content-Length: {body}");
    assert!(
        body["detail"].is_string() && body["code"].is_string(),
        "{body}"
    );

    // Streamed (chunked) upload far over the limit, without Content-Length: answered 413
    // while the client is still sending, and the server does not buffer it.
    let rss_before = api.rss_kib();
    let (status, body) = oversized_upload(env.port, 64 * 1024 * 1024, Framing::Chunked);
    assert_eq!(status, 413, "chunked oversized upload: {body}");
    let rss_after = api.rss_kib();
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count_rows(&env, "master_jobs").await, 0, "no job rows");
    assert_eq!(count_rows(&env, "Jobs").await, 0, "nothing queued");
    assert!(
        env.files_under("uploads").is_empty(),
        "{:?}",
        env.files_under("uploads")
    );
    assert!(
        env.files_under("tmp").is_empty(),
        "{:?}",
        env.files_under("tmp")
    );
    assert!(env.files_under("results").is_empty());

    // Unknown ids and routes.
    let r = fetch(format!(
        "{base}/api/master/status/0123456789abcdef0123456789abcdef"
    ))
    .await;
    assert_eq!(r.status().as_u16(), 404);
    let r = fetch(format!("{base}/api/master/result/..%2F..%2Fetc")).await;
    assert_eq!(r.status().as_u16(), 404);
}

/// A WAV cut short (the header promises 5 s; the file holds a few frames, or 60 % of the
/// data) is refused at upload: `mastering::probe` decodes the tail the header declares.
#[tokio::test(flavor = "multi_thread")]
async fn truncated_wav_is_rejected_at_upload() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let whole = wav_bytes(5.0);
    for keep in [60, whole.len() * 6 / 10] {
        let truncated = whole[..keep].to_vec();
        let (status, body) = upload(
            &env.base_url(),
            "/api/v2/master",
            Some(("cut.wav", truncated)),
            &[],
        )
        .await;
        assert!(
            status == 400 || status == 415,
            "{keep} bytes: {status} {body}"
        );
        assert!(body["detail"].is_string(), "{body}");
    }
    assert_eq!(count_rows(&env, "master_jobs").await, 0);
    assert!(env.files_under("uploads").is_empty());
}

/// How [`oversized_upload`] frames its body.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    ContentLength,
    Chunked,
}

/// Sends a multipart upload of `total` bytes over a raw socket, reading the response
/// concurrently; returns the HTTP status and the JSON body (Null when there is none).
/// Asserts that the server answered before the whole body was sent.
fn oversized_upload(port: u16, total: usize, framing: Framing) -> (u16, serde_json::Value) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = stream.try_clone().unwrap();
    let response = std::thread::spawn(move || {
        String::from_utf8_lossy(&read_raw_response(reader)).into_owned()
    });
    let boundary = "XBOUNDARYX";
    let part = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    );
    let framing_header = match framing {
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
        Framing::ContentLength => format!("Content-Length: {}", part.len() + total),
    };
    let head = format!(
        "POST /api/v2/master HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n{framing_header}\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let mut write_data = |data: &[u8]| -> bool {
        let mut frame = Vec::with_capacity(data.len() + 16);
        if framing == Framing::Chunked {
            frame.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        frame.extend_from_slice(data);
        if framing == Framing::Chunked {
            frame.extend_from_slice(b"\r\n");
        }
        stream.write_all(&frame).is_ok()
    };
    write_data(part.as_bytes());
    let block = vec![0x55u8; 256 * 1024];
    let mut sent = 0;
    while sent < total && write_data(&block[..block.len().min(total - sent)]) {
        sent += block.len().min(total - sent);
        if response.is_finished() {
            break;
        }
    }
    let text = response.join().unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    if framing == Framing::Chunked {
        assert!(
            sent < total,
            "the server read the whole {total}-byte body before answering"
        );
    }
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// A file that probes fine but cannot be mastered fails once, with a readable message,
/// and is not retried.
#[tokio::test(flavor = "multi_thread")]
async fn unmasterable_file_fails_once_with_a_message() {
    let env = Env::new(&[]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    // Four seconds of digital silence: decodes fine, but there is no loudness to bring to
    // a target (found only by decoding the whole file, so after queueing).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for _ in 0..4 * 44_100 * 2 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let id = submit(&base, "silent.wav", std::fs::read(&path).unwrap()).await;
    let s = wait_final(&base, &id, Duration::from_secs(30)).await;
    assert_eq!(s["status"], "failed", "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("silent"), "{error}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = status(&base, &id).await;
    assert_eq!(s["status"], "failed");
    assert_eq!(s["attempts"], 1, "not retried: {s}");
    let r = fetch(format!("{base}/api/master/result/{id}")).await;
    assert_eq!(r.status().as_u16(), 409);
}

/// Waits until the job is running under `worker` with some progress.
async fn wait_running(env: &Env, id: &str, worker: &str) {
    wait_for(
        Duration::from_secs(30),
        Duration::from_millis(10),
        async || {
            let row = job_row(env, id).await;
            if row.status == shared::jobs::JobStatus::Running
                && row.worker.as_deref() == Some(worker)
                && row.progress > 0
            {
                return Ok(());
            }
            assert!(
                !row.status.is_final(),
                "job finished before it could be interrupted: {row:?}"
            );
            Err(format!("job never ran on {worker}: {row:?}"))
        },
    )
    .await
}

/// SIGKILL a worker mid-job: another worker takes it over; then SIGKILL that one mid-job
/// and restart it under the same name: it reclaims its orphan. Each job completes once.
#[tokio::test(flavor = "multi_thread")]
async fn killed_worker_job_is_finished_exactly_once() {
    // Worker processes: SIGKILLed mid-job and restarted under the same name.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let long = wav_bytes(LONG_SECONDS);

    let mut a = env.start_worker("worker-a");
    let first = submit(&base, "first.wav", long.clone()).await;
    wait_running(&env, &first, "worker-a").await;
    a.kill();
    let mut b = env.start_worker("worker-b");
    let s = wait_final(&base, &first, Duration::from_secs(120)).await;
    assert_eq!(s["status"], "done", "{s}");
    let row = job_row(&env, &first).await;
    assert_eq!(row.completions, 1);
    assert_eq!(row.worker.as_deref(), Some("worker-b"));
    assert!(row.attempts >= 2, "{row:?}");

    let second = submit(&base, "second.wav", long).await;
    wait_running(&env, &second, "worker-b").await;
    b.kill();
    let _b2 = env.start_worker("worker-b");
    let s = wait_final(&base, &second, Duration::from_secs(120)).await;
    assert_eq!(s["status"], "done", "{s}");
    let row = job_row(&env, &second).await;
    assert_eq!(row.completions, 1);
    assert!(row.attempts >= 2, "{row:?}");

    let r = fetch(format!("{base}/api/master/result/{second}")).await;
    let bytes = r.bytes().await.unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let seconds = f64::from(reader.duration()) / 44_100.0;
    assert!((seconds - LONG_SECONDS).abs() < 0.05, "{seconds}");
    // No partial files are served or left next to the result.
    let results = env.files_under("results");
    assert_eq!(results.len(), 2, "{results:?}");
}

/// Length of the file used to interrupt a running job.
const LONG_SECONDS: f64 = 90.0;

/// SIGKILL the API (with its embedded worker) and start it again: statuses and results
/// are intact, and a job interrupted by the kill is finished after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn api_restart_keeps_jobs_and_results() {
    // Process-level: the API process is SIGKILLed and started again.
    let env = Env::new(&[]);
    let base = env.base_url();
    let mut api = env.start_api().await;
    let done_id = submit(&base, "kept.wav", wav_bytes(6.0)).await;
    let before = wait_final(&base, &done_id, Duration::from_secs(60)).await;
    assert_eq!(before["status"], "done");
    let result_before = fetch(format!("{base}/api/master/result/{done_id}"))
        .await
        .bytes()
        .await
        .unwrap();
    let running_id = submit(&base, "interrupted.wav", wav_bytes(LONG_SECONDS)).await;
    let worker = format!("embedded-{}-0", env.port);
    wait_running(&env, &running_id, &worker).await;
    api.kill();

    let _api = env.start_api().await;
    let after = status(&base, &done_id).await;
    assert_eq!(before, after);
    let result_after = fetch(format!("{base}/api/master/result/{done_id}"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(result_before, result_after);
    let s = wait_final(&base, &running_id, Duration::from_secs(120)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(job_row(&env, &running_id).await.completions, 1);
}

/// Two worker processes, 20 jobs, 50 concurrent status pollers: every job done exactly
/// once, no request error, no "database is locked".
#[tokio::test(flavor = "multi_thread")]
async fn two_workers_twenty_jobs_fifty_pollers() {
    // Worker processes: two of them compete for the queue.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let _w1 = env.start_worker("worker-1");
    let _w2 = env.start_worker("worker-2");
    let audio = wav_bytes(4.0);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(submit(&base, &format!("track{i}.wav"), audio.clone()).await);
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for p in 0..50 {
        let (base, ids, stop) = (base.clone(), ids.clone(), stop.clone());
        pollers.push(tokio::spawn(async move {
            let client = client();
            let (mut ok, mut errors) = (0u32, Vec::new());
            let mut i = p;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = &ids[i % ids.len()];
                i += 1;
                match client
                    .get(format!("{base}/api/master/status/{id}"))
                    .send()
                    .await
                {
                    Ok(r) => {
                        let code = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        if code == 200 && !body.contains("locked") {
                            ok += 1;
                        } else {
                            errors.push(format!("{code} {body}"));
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, errors)
        }));
    }

    for id in &ids {
        let s = wait_final(&base, id, Duration::from_secs(240)).await;
        assert_eq!(s["status"], "done", "{s}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total_ok = 0;
    for p in pollers {
        let (ok, errors) = p.await.unwrap();
        assert!(errors.is_empty(), "poller errors: {errors:?}");
        total_ok += ok;
    }
    assert!(total_ok >= 50, "pollers made {total_ok} requests");

    let mut per_worker = std::collections::HashMap::new();
    for id in &ids {
        let row = job_row(&env, id).await;
        assert_eq!(row.completions, 1, "{row:?}");
        *per_worker
            .entry(row.worker.unwrap_or_default())
            .or_insert(0) += 1;
    }
    eprintln!("jobs per worker: {per_worker:?}, status requests: {total_ok}");
    assert_eq!(per_worker.values().sum::<i32>(), 20);
}

/// After the retention TTL the sweeper deletes the files; status says expired, result 410.
#[tokio::test(flavor = "multi_thread")]
async fn finished_jobs_expire() {
    let env = Env::new(&[
        ("JOBS_DONE_TTL_SECONDS", "2"),
        ("SWEEP_INTERVAL_SECONDS", "1"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let id = submit(&base, "soon-gone.wav", wav_bytes(4.0)).await;
    let s = wait_final(&base, &id, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "done");
    wait_for(
        Duration::from_secs(20),
        Duration::from_millis(200),
        async || {
            let s = status(&base, &id).await;
            if s["status"] == "expired" {
                Ok(())
            } else {
                Err(format!("not expired: {s}"))
            }
        },
    )
    .await;
    let r = fetch(format!("{base}/api/master/result/{id}")).await;
    assert_eq!(r.status().as_u16(), 410);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "expired");
    assert!(env.files_under("uploads").is_empty());
    assert!(env.files_under("results").is_empty());
}

/// An invalid setting stops start-up with a message naming the variable.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_setting_stops_startup() {
    // Process-level: start-up refusal is an exit status and a message on stderr.
    let env = Env::new(&[]);
    for (bin, var, value) in [
        (api_binary(), "MAGIC_MASTER_PORT", "abc"),
        (worker_binary(), "MAGIC_MASTER_WORKER_CONCURRENCY", "0"),
    ] {
        let out = std::process::Command::new(&bin)
            .envs(&env.vars)
            .env(var, value)
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{} started with {var}={value}",
            bin.display()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{stderr}");
        assert!(stderr.contains(value), "{stderr}");
    }
}

/// The small read-only routes.
#[tokio::test(flavor = "multi_thread")]
async fn styles_health_and_openapi() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let styles: serde_json::Value = get_json(format!("{base}/api/styles")).await;
    let list = styles["styles"].as_array().unwrap();
    assert_eq!(list.len(), 8);
    assert_eq!(list[0]["id"], "standard");
    assert_eq!(list[0]["target_lufs"], -14.0);
    let health: serde_json::Value = get_json(format!("{base}/api/health")).await;
    assert_eq!(health["components"]["database"]["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let doc: serde_json::Value = get_json(format!("{base}/api/openapi.json")).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v2/master",
        "/api/master/status/{job_id}",
        "/api/master/progress/{job_id}",
        "/api/master/result/{job_id}",
        "/api/master/preview/{job_id}",
        "/api/styles",
        "/api/v2/analyze",
        "/api/health",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
}

/// `POST /api/v2/analyze` returns the library's analysis of the upload, keeps nothing, and
/// refuses a file that is not audio.
#[tokio::test(flavor = "multi_thread")]
async fn analyze_route_measures_the_upload() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let bytes = wav_bytes(6.0);
    let (status, body) = upload(
        &env.base_url(),
        "/api/v2/analyze",
        Some(("mix.wav", bytes.clone())),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mix.wav");
    std::fs::write(&path, &bytes).unwrap();
    let expected = mastering::analyze_file(&path).unwrap();
    let expected_json = serde_json::to_value(&expected).unwrap();
    assert!(
        json_close(&body, &expected_json),
        "route: {body}\nlibrary: {expected_json}"
    );
    assert!((expected.duration_sec - 6.0).abs() < 0.01, "{body}");
    assert_eq!((expected.sample_rate, expected.channels), (44_100, 2));
    assert!(expected.lufs > -30.0 && expected.lufs < -10.0, "{body}");
    assert!(
        expected.true_peak_db >= expected.sample_peak_db - 0.01,
        "{body}"
    );
    assert!(expected.spectrum.len() >= 9, "{body}");
    let spotify = expected
        .streaming_preview
        .iter()
        .find(|p| p.platform == "Spotify")
        .expect("Spotify in the streaming preview");
    assert_eq!(spotify.target_lufs, -14.0);

    let (status, body) = upload(
        &env.base_url(),
        "/api/v2/analyze",
        Some(("notes.wav", b"just some text, not audio".to_vec())),
        &[],
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert!(
        env.files_under("tmp").is_empty(),
        "{:?}",
        env.files_under("tmp")
    );
    assert!(env.files_under("uploads").is_empty());
}

/// Equal JSON, numbers within 1e-9 relative (a float's text form may differ in its last
/// digit after a round trip).
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// SIGTERM while a job runs: the worker finishes the job, then exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_job_finish() {
    // A worker process: SIGTERM and its exit are what is tested.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let mut worker = env.start_worker("worker-t");
    let id = submit(&base, "graceful.wav", wav_bytes(LONG_SECONDS)).await;
    wait_running(&env, &id, "worker-t").await;
    let exit = worker
        .terminate(Duration::from_secs(60))
        .expect("worker exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
    let row = job_row(&env, &id).await;
    assert_eq!(row.status, shared::jobs::JobStatus::Done, "{row:?}");
    assert_eq!((row.attempts, row.completions), (1, 1));
}
