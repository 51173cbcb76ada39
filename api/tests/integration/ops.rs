//! Operations: health and its degraded rules triggered for real, a Telegram alert at a mock
//! Bot API, a real Prometheus scraping the API, answers without file-system paths (the
//! service run in this test process); and against the real binaries where the process
//! matters: metrics with two worker processes and with none, `magic-master-api backup`
//! under load and a restore round trip, memory and metric labels under random methods, and
//! process-wide counters (the Prometheus recorder is one per process).

use crate::common;

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
    // Process-level: two worker processes SIGTERMed, and the API's Prometheus gauges, which are
    // one per process (an in-process service shares them with this binary's other tests).
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
        Value::Null,
        "no server path in public answers"
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
    let _api = env.spawn_app().await;
    let h = get_json_ok(format!("{}/api/health", env.base_url())).await;
    assert_eq!(h["components"]["disk"]["status"], "low", "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["components"]["database"]["status"], "ok");
}

/// The database file replaced by garbage (works as root, unlike chmod) → database error.
#[tokio::test(flavor = "multi_thread")]
async fn garbage_database_file_degrades() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
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
    // The report is cached for a second: the change shows within that.
    let h = wait_health(&base, "database error", |h| {
        h["components"]["database"]["status"] == "error"
    })
    .await;
    assert_eq!(h["status"], "degraded", "{h}");
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
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let id = submit(&base, "Lost Mix.wav", wav_bytes(2.0)).await;
    shared::paths::remove_dir_if_exists(&shared::paths::upload_dir(&env.data_dir(), &id)).unwrap();
    let _w = env.spawn_worker("worker-1").await;
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
    // Process-level: `magic-master-api backup` (the CLI) beside a running API, which is then
    // SIGTERMed.
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
    let _api = env.spawn_app().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/prometheus_smoke.sh");
    let port = env.port;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .arg(format!("127.0.0.1:{port}"))
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

/// Reads one pipelined HTTP/1.1 response after another from `reader` until `n` are complete;
/// returns how many came with each status. Every response must carry `Content-Length`.
async fn read_responses(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    n: usize,
) -> Result<std::collections::HashMap<u16, usize>, String> {
    use tokio::io::AsyncReadExt;
    let mut statuses = std::collections::HashMap::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let mut done = 0;
    while done < n {
        // Take every complete response at the front of the buffer.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("not an HTTP response head: {head:.200}"))?;
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .ok_or_else(|| format!("response without Content-Length: {head:.300}"))?;
            if buf.len() < end + 4 + length {
                break;
            }
            buf.drain(..end + 4 + length);
            *statuses.entry(status).or_insert(0) += 1;
            done += 1;
        }
        if done >= n {
            break;
        }
        let read = reader
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read after {done} responses: {e}"))?;
        if read == 0 {
            return Err(format!("connection closed after {done} of {n} responses"));
        }
        buf.extend_from_slice(&chunk[..read]);
    }
    Ok(statuses)
}

/// Sends `total` requests over `connections` keep-alive connections (pipelined: a writer
/// and a reader per connection); `request(i)` gives the bytes of request `i`. Returns the
/// statuses of the answers; panics (with what was seen) unless all are answered in 60 s.
async fn blast(
    address: &str,
    connections: usize,
    total: usize,
    request: impl Fn(usize) -> Vec<u8> + Send + Sync + Clone + 'static,
) -> std::collections::HashMap<u16, usize> {
    use tokio::io::AsyncWriteExt;
    let per = total / connections;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (reader, mut writer) = stream.into_split();
        let request = request.clone();
        let write = tokio::spawn(async move {
            let mut batch = Vec::new();
            for i in c * per..(c + 1) * per {
                batch.extend(request(i));
                if batch.len() >= 64 * 1024 {
                    writer.write_all(&batch).await?;
                    batch.clear();
                }
            }
            writer.write_all(&batch).await?;
            Ok::<_, std::io::Error>(writer)
        });
        tasks.push((write, tokio::spawn(read_responses(reader, per))));
    }
    let all = async {
        let mut statuses = std::collections::HashMap::new();
        for (write, read) in tasks {
            let seen = read.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
            let _writer = write.await.unwrap().expect("write requests");
            for (s, n) in seen {
                *statuses.entry(s).or_insert(0) += n;
            }
        }
        statuses
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("all requests answered within 60 s")
}

/// `GET url`, reading at most `cap` bytes of the body (within 60 s): the size read and the
/// text (cut at `cap`).
async fn get_capped(url: String, cap: usize) -> (usize, String) {
    let read = async {
        let mut r = client().get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
            if body.len() > cap {
                break;
            }
        }
        (body.len(), String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("scrape within 60 s")
}

/// 50,000 requests with random 1 KiB method tokens (most answered 429 by the global rate
/// limit at its default) leave no trace in the metric labels: the API's memory grows by
/// less than 16 MB and one `/metrics` scrape stays under 256 KB.
#[tokio::test(flavor = "multi_thread")]
async fn random_methods_do_not_grow_metric_labels_or_memory() {
    // Process-level: the API process's resident memory and its process-wide metric labels.
    use rand::Rng;
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("GLOBAL_RATE_LIMIT", "600")]);
    let api = env.start_api().await;
    let address = format!("127.0.0.1:{}", env.port);
    let paths = ["/api/styles", "/", "/api/master/status/x", "/no/such/page"];
    let request = move |i: usize, method: &str| {
        format!(
            "{method} {} HTTP/1.1\r\nHost: localhost\r\n\r\n",
            paths[i % paths.len()]
        )
        .into_bytes()
    };
    // Warm-up with ordinary methods: threads, buffers and the rate limiter's entry exist.
    let warm = blast(&address, 8, 4_000, move |i| request(i, "GET")).await;
    assert_eq!(warm.values().sum::<usize>(), 4_000, "{warm:?}");
    let rss_before = api.rss_kib();

    let started = std::time::Instant::now();
    let seen = blast(&address, 8, 50_000, move |i| {
        let mut rng = rand::rng();
        let method: String = (0..1024)
            .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
            .collect();
        request(i, &method)
    })
    .await;
    let took = started.elapsed();
    assert_eq!(seen.values().sum::<usize>(), 50_000, "{seen:?}");
    assert!(
        seen.get(&429).copied().unwrap_or(0) > 45_000,
        "the rate limit answers most: {seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = api.rss_kib();
    let cap = 256 * 1024;
    let (size, text) = get_capped(format!("{}/metrics", env.base_url()), cap).await;
    let growth_mib = (rss_after.saturating_sub(rss_before)) as f64 / 1024.0;
    eprintln!(
        "50,000 random-method requests in {took:.1?}: {seen:?}; RSS {rss_before} → \
         {rss_after} KiB (+{growth_mib:.1} MiB); /metrics {size} bytes{}",
        if size > cap { " (stopped reading)" } else { "" }
    );
    assert!(
        size <= cap && growth_mib < 16.0,
        "RSS grew {growth_mib:.1} MiB, /metrics {size} bytes"
    );
    // The odd methods count as `other`; no label holds a token.
    assert!(
        text.contains(
            "magic_master_http_requests_total{method=\"other\",route=\"/api/styles\",status=\"429\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("method=\"GET\",route=\"unmatched\""),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("AAAAAAAA") || l.len() > 400),
        "no long labels: {text}"
    );
}

/// The value of `magic_master_health_checks_total` in a scrape.
async fn health_checks(base: &str) -> f64 {
    let p = get_text(format!("{base}/metrics")).await;
    sample(&p, "magic_master_health_checks_total").unwrap_or_else(|| panic!("{p}"))
}

/// Many concurrent `/api/health` calls share one check of the database per cache window
/// (the counter counts the checks, whoever asks: callers and the monitor).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_health_calls_share_one_check_per_window() {
    // Process-level: counts a process-wide Prometheus counter, which other in-process services
    // of this binary would move.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.start_api().await;
    let base = env.base_url();
    let before = health_checks(&base).await;
    let started = std::time::Instant::now();
    let run_for = Duration::from_millis(2500);
    let mut callers = Vec::new();
    for _ in 0..16 {
        let url = format!("{base}/api/health");
        callers.push(tokio::spawn(async move {
            let c = client();
            let mut calls = 0u32;
            while started.elapsed() < run_for {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let h: Value = r.json().await.unwrap();
                assert_eq!(h["status"], "ok", "{h}");
                calls += 1;
            }
            calls
        }));
    }
    let mut calls = 0;
    for c in callers {
        calls += c.await.unwrap();
    }
    let elapsed = started.elapsed();
    let checks = health_checks(&base).await - before;
    eprintln!("{calls} health calls in {elapsed:.1?}: {checks} database checks");
    assert!(calls >= 200, "{calls} calls: too few to show anything");
    // A check at most every second (the cache window), one more at either end, and one of
    // the monitor's (it shares the cache).
    let allowed = elapsed.as_secs_f64().ceil() + 2.0;
    assert!(
        checks <= allowed,
        "{checks} checks for {calls} calls in {elapsed:.1?}"
    );
    // And the report is fresh again after the window.
    let before = health_checks(&base).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    get_json_ok(format!("{base}/api/health")).await;
    assert!(
        health_checks(&base).await > before,
        "recomputed after the window"
    );
}

/// No public answer shows where the data or temp dir is (the health report, the Prometheus
/// and JSON metrics, pages, error answers), healthy or degraded.
#[tokio::test(flavor = "multi_thread")]
async fn public_answers_show_no_file_system_paths() {
    // The temp dir apart from the data dir, the disk threshold above the free space: the
    // disk component is `low`, the path would be in its text.
    let mut env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("DISK_LOW_MB", "1000000000")]);
    let spool = env.dir.path().join("spool");
    env.vars
        .insert("MAGIC_MASTER_TEMP_DIR".into(), spool.display().to_string());
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let h = get_json_ok(format!("{base}/api/health")).await;
    assert_eq!(h["components"]["disk"]["status"], "low", "{h}");
    let root = env.dir.path().display().to_string();
    for path in [
        "/api/health",
        "/metrics",
        "/api/metrics",
        "/status",
        "/api/no-such",
        "/no-such-page",
        "/api/openapi.json",
    ] {
        let body = get_text(format!("{base}{path}")).await;
        assert!(!body.contains(&root), "{path} shows {root}: {body:.2000}");
        assert!(!body.contains("/spool"), "{path}: {body:.2000}");
    }
    assert_eq!(h["components"]["disk"]["path"], Value::Null, "{h}");
}
