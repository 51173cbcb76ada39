//! Operations against the real binaries: health and its degraded rules triggered for real,
//! metrics with two workers and with none, a Telegram alert at a mock Bot API, backups
//! under load and a restore round trip, and a real Prometheus scraping the API.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// The value of one sample line of a Prometheus exposition (exact name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn wait_health(base: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || {
            let h = get_json_ok(format!("{base}/api/health")).await;
            if ok(&h) {
                Ok(h)
            } else {
                Err(format!("{what}: {h}"))
            }
        },
    )
    .await
}

/// No worker while a job waits → degraded; two workers → ok, job done, metrics right.
#[tokio::test(flavor = "multi_thread")]
async fn workers_rule_and_metrics_with_none_and_two_workers() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.start_api().await;
    let base = env.base_url();

    let h = get_json_ok(format!("{base}/api/health")).await;
    assert_eq!(h["status"], "ok", "no job waits: {h}");
    let c = &h["components"];
    assert_eq!(c["database"]["status"], "ok");
    assert_eq!(c["disk"]["status"], "ok");
    assert!(c["disk"]["free_mb"].as_u64().unwrap() > 0);
    assert_eq!(
        c["disk"]["path"],
        env.data_dir().join("tmp").display().to_string()
    );
    assert!(["ok", "missing"].contains(&c["ffmpeg"]["status"].as_str().unwrap()));
    assert_eq!(
        c["workers"],
        serde_json::json!({"status": "none", "alive": 0})
    );
    assert_eq!(c["queue"]["pending"], 0);
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));

    let id = submit(&base, "a.wav", wav_bytes(3.0)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let h = get_json_ok(format!("{base}/api/health")).await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["components"]["queue"]["pending"], 1);
    assert!(
        h["components"]["queue"]["oldest_pending_sec"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(h["jobs"]["queued"], 1);
    let m = get_json_ok(format!("{base}/api/metrics")).await;
    assert_eq!(
        (m["jobs_queued"].as_u64(), m["workers_alive"].as_u64()),
        (Some(1), Some(0))
    );
    let p = get_text(format!("{base}/metrics")).await;
    assert_eq!(
        sample(&p, "magic_master_queue_jobs{state=\"queued\"}"),
        Some(1.0),
        "{p}"
    );
    assert_eq!(sample(&p, "magic_master_workers_alive"), Some(0.0));
    assert!(sample(&p, "magic_master_queue_oldest_pending_seconds").unwrap() >= 1.0);
    assert!(
        sample(&p, "magic_master_upload_bytes_total").unwrap() > 500_000.0,
        "{p}"
    );

    let mut w1 = env.start_worker("worker-1");
    let mut w2 = env.start_worker("worker-2");
    let s = wait_final(&base, &id, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "done", "{s}");
    let h = wait_health(&base, "two workers alive", |h| {
        h["components"]["workers"]["alive"] == 2
    })
    .await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["components"]["queue"]["pending"], 0);
    let p = get_text(format!("{base}/metrics")).await;
    assert_eq!(sample(&p, "magic_master_workers_alive"), Some(2.0), "{p}");
    assert_eq!(
        sample(&p, "magic_master_queue_jobs{state=\"done\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&p, "magic_master_queue_jobs{state=\"queued\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &p,
            "magic_master_jobs_finished_total{outcome=\"done\",style=\"standard\",format=\"wav\"}"
        ),
        Some(1.0),
        "{p}"
    );
    assert_eq!(
        sample(
            &p,
            "magic_master_job_duration_seconds_count{style=\"standard\",format=\"wav\"}"
        ),
        Some(1.0)
    );
    assert!(p.contains("magic_master_http_requests_total{method=\"GET\",route=\"/api/master/status/{job_id}\",status=\"200\"}"), "{p}");
    assert!(p.contains("magic_master_build_info{version=\""));
    assert!(!p.contains(&id), "no job id in labels");
    // A second scrape does not count the job again.
    let p = get_text(format!("{base}/metrics")).await;
    assert_eq!(
        sample(
            &p,
            "magic_master_jobs_finished_total{outcome=\"done\",style=\"standard\",format=\"wav\"}"
        ),
        Some(1.0)
    );

    // Workers gone: alive drops to 0 after the window; no job waits, so still ok.
    assert!(w1.terminate(Duration::from_secs(20)).is_some());
    assert!(w2.terminate(Duration::from_secs(20)).is_some());
    let h = wait_health(&base, "no workers", |h| {
        h["components"]["workers"]["alive"] == 0
    })
    .await;
    assert_eq!(h["status"], "ok", "{h}");
    let m = get_json_ok(format!("{base}/api/metrics")).await;
    assert_eq!(m["workers_alive"], 0);
    assert_eq!(m["jobs_total"], 1);
}

/// The disk threshold raised above the free space → disk low, degraded.
#[tokio::test(flavor = "multi_thread")]
async fn disk_threshold_above_free_space_degrades() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("DISK_LOW_MB", "1000000000")]);
    let _api = env.start_api().await;
    let h = get_json_ok(format!("{}/api/health", env.base_url())).await;
    assert_eq!(h["components"]["disk"]["status"], "low", "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["components"]["database"]["status"], "ok");
}

/// The database file replaced by garbage (works as root, unlike chmod) → database error.
#[tokio::test(flavor = "multi_thread")]
async fn garbage_database_file_degrades() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.start_api().await;
    let base = env.base_url();
    assert_eq!(
        get_json_ok(format!("{base}/api/health")).await["status"],
        "ok"
    );
    let db = env.data_dir().join("magic_master.db");
    let junk = env.data_dir().join("junk");
    std::fs::write(&junk, b"this is not a database file ".repeat(400)).unwrap();
    std::fs::rename(&junk, &db).unwrap();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let h = get_json_ok(format!("{base}/api/health")).await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["components"]["database"]["status"], "error", "{h}");
    let detail = h["components"]["database"]["detail"].as_str().unwrap();
    assert!(detail.contains("not a database"), "{detail}");
    // The Prometheus endpoint still answers.
    assert_eq!(
        fetch(format!("{base}/metrics")).await.status().as_u16(),
        200
    );
}

/// A job whose upload vanished before a worker took it fails with the reason, and exactly
/// one Telegram message reaches the (mock) Bot API.
#[tokio::test(flavor = "multi_thread")]
async fn final_job_failure_sends_exactly_one_telegram_message() {
    let bot = MockBot::start().await;
    let mut vars = vec![
        ("EMBEDDED_WORKERS", "0"),
        ("MONITOR_INTERVAL_SECONDS", "3600"),
    ];
    vars.extend(bot.settings());
    let env = Env::new(&vars);
    let _api = env.start_api().await;
    let base = env.base_url();
    let id = submit(&base, "Lost Mix.wav", wav_bytes(2.0)).await;
    shared::paths::remove_dir_if_exists(&shared::paths::upload_dir(&env.data_dir(), &id)).unwrap();
    let _w = env.start_worker("worker-1");
    let s = wait_final(&base, &id, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "failed", "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("missing"), "{error}");
    assert_eq!(s["attempts"], 1);

    bot.wait_calls(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // a second message would show now
    let calls = bot.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (path, body) = &calls[0];
    // Bot API method names are case-insensitive; teloxide sends `SendMessage`.
    assert_eq!(
        path.to_ascii_lowercase(),
        "bot123456:test-token/sendmessage",
        "{path}"
    );
    let body: Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(body["chat_id"], 42);
    let text = body["text"].as_str().unwrap();
    for part in [
        id.as_str(),
        "Lost Mix.wav",
        "standard",
        "attempts: 1",
        "missing",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
}

/// Snapshots taken with `magic-master-api backup` while jobs are written all pass
/// `PRAGMA integrity_check`; one restored into a new data dir serves its jobs.
#[tokio::test(flavor = "multi_thread")]
async fn backups_under_load_and_restore_round_trip() {
    let env = Env::new(&[]);
    let mut api = env.start_api().await;
    let base = env.base_url();
    let first = submit(&base, "first.wav", wav_bytes(3.0)).await;
    let s = wait_final(&base, &first, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "done", "{s}");
    let credentials = serde_json::json!({"email": "kept@example.com", "password": "kept password"});
    let (code, body, _) = post_json(&base, "/api/auth/register", credentials.clone()).await;
    assert_eq!(code, 201, "{body}");
    // Writers: more jobs (progress updates from the embedded worker) and status polls.
    let bytes = wav_bytes(4.0);
    let writer = {
        let base = base.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..4 {
                ids.push(submit(&base, &format!("load{i}.wav"), bytes.clone()).await);
            }
            ids
        })
    };
    let out_dir = tempfile::tempdir().unwrap();
    let mut snapshots = Vec::new();
    for i in 0..5 {
        let out = out_dir.path().join(format!("snap{i}.sqlite3"));
        let ran = std::process::Command::new(api_binary())
            .env_clear()
            .envs(&env.vars)
            .arg("backup")
            .arg(&out)
            .status()
            .unwrap();
        assert!(ran.success(), "backup {i}");
        shared::backup::integrity_check(&out).unwrap();
        snapshots.push(out);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ids = writer.await.unwrap();
    for id in &ids {
        wait_final(&base, id, Duration::from_secs(120)).await;
    }
    let last = out_dir.path().join("final.sqlite3");
    let ran = std::process::Command::new(api_binary())
        .env_clear()
        .envs(&env.vars)
        .args(["backup".as_ref(), last.as_os_str()])
        .status()
        .unwrap();
    assert!(ran.success());
    assert!(api.terminate(Duration::from_secs(30)).is_some());

    // Restore into a fresh data dir and start the API on it.
    let restored = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    std::fs::create_dir_all(restored.data_dir()).unwrap();
    std::fs::copy(&last, restored.data_dir().join("magic_master.db")).unwrap();
    let _api2 = restored.start_api().await;
    for id in std::iter::once(&first).chain(&ids) {
        let s = status(&restored.base_url(), id).await;
        assert_eq!(s["status"], "done", "{id}: {s}");
    }
    let m = get_json_ok(format!("{}/api/metrics", restored.base_url())).await;
    assert_eq!(m["jobs_total"], 5);
    // The account is there too: its password logs in on the restored service.
    let (code, body, _) = post_json(&restored.base_url(), "/api/auth/login", credentials).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["email"], "kept@example.com");
}

/// A real Prometheus (Debian package `prometheus`) scrapes the running API; a metric is read
/// back through its HTTP API by `ops/prometheus_smoke.sh`.
#[tokio::test(flavor = "multi_thread")]
async fn real_prometheus_scrapes_the_api() {
    let installed = std::process::Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is not installed (Debian package `prometheus`) and CI is set"
        );
        eprintln!("SKIPPED: prometheus is not installed (apt-get install -y prometheus)");
        return;
    }
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.start_api().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/prometheus_smoke.sh");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .arg(format!("127.0.0.1:{}", env.port))
            .arg("magic_master_queue_jobs")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("magic_master_queue_jobs: \"result\":[{"),
        "{stdout}"
    );
    assert!(stdout.contains("state"), "{stdout}");
}
