//! Helpers for the API's integration tests: generated WAVs, a temporary service environment
//! ([`Env`]: data directory, reserved port, settings), the two ways to run the service on it
//! — in this test process ([`in_process`], the default) or as the release binaries
//! ([`process`], only where the process matters) — an HTTP client, database inspection.
//! Every test that makes an [`Env`] is watched by a [`watchdog`]: a hang aborts the test
//! binary with a report naming the test.

pub mod auth;
pub mod encoding;
pub mod in_process;
pub mod mock_telegram;
pub mod process;
pub mod watchdog;

pub use auth::*;
pub use encoding::*;
pub use in_process::App;
pub use mock_telegram::MockBot;
pub use process::{api_binary, worker_binary};
pub use watchdog::Logs;

use deadpool_sqlite::rusqlite::types::FromSql;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The bytes of a [`write_wav`] file of `seconds` length at 44.1 kHz.
pub fn wav_bytes(seconds: f64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.wav");
    write_wav(&path, seconds, 44_100);
    std::fs::read(path).unwrap()
}

/// Writes a music-like stereo WAV (tones, a slow envelope and noise) of `seconds` length,
/// about -20 LUFS.
pub fn write_wav(path: &Path, seconds: f64, sample_rate: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    let frames = (seconds * f64::from(sample_rate)) as usize;
    let mut seed: u32 = 0x1234_5678;
    for i in 0..frames {
        let t = i as f64 / f64::from(sample_rate);
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (f64::from(seed >> 8) / f64::from(1u32 << 24)) * 2.0 - 1.0;
        let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 0.5 * t).sin();
        let tone = 0.25 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
            + 0.12 * (2.0 * std::f64::consts::PI * 660.0 * t).sin()
            + 0.03 * noise;
        let l = 0.3 * env * tone;
        let r = 0.3 * env * (tone * 0.9 + 0.02 * noise);
        w.write_sample((l * 32767.0) as i16).expect("write");
        w.write_sample((r * 32767.0) as i16).expect("write");
    }
    w.finalize().expect("finalize wav");
}

/// A free TCP port on 127.0.0.1 (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A temporary service: data dir, port, settings shared by the API and its workers (in
/// process or as processes).
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The port of 127.0.0.1 the service answers on.
    pub port: u16,
    /// The settings, as `MAGIC_MASTER_*` variables (the processes' environment, or
    /// [`shared::Settings::from_vars`] in process).
    pub vars: HashMap<String, String>,
    /// [`Env::port`], bound from the start so no other test can take it before an
    /// in-process service serves on it; a process started here gets it released.
    listener: Mutex<Option<std::net::TcpListener>>,
    /// Aborts the test binary with a report if this test hangs (in process or with
    /// processes, which it adds to its report: see [`process`]); started with the `Env`.
    watchdog: OnceLock<watchdog::Watchdog>,
}

impl Env {
    /// A fresh data dir and port; `extra` are `MAGIC_MASTER_*` suffixes and values.
    pub fn new(extra: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("bound address").port();
        let mut vars = HashMap::new();
        vars.insert(
            "MAGIC_MASTER_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        );
        vars.insert("MAGIC_MASTER_PORT".into(), port.to_string());
        vars.insert("MAGIC_MASTER_WORKER_HEARTBEAT_SECONDS".into(), "1".into());
        vars.insert("RUST_LOG".into(), "info".into());
        // Guests are limited per IP and every test client is 127.0.0.1.
        vars.insert("MAGIC_MASTER_GUEST_DAILY_LIMIT".into(), "1000".into());
        // The same holds for the global per-IP rate limit: the load tests (50 pollers) would
        // exceed the production default. Tests of the limit itself set their own value.
        vars.insert("MAGIC_MASTER_GLOBAL_RATE_LIMIT".into(), "1000000".into());
        for (k, v) in extra {
            vars.insert(format!("MAGIC_MASTER_{k}"), (*v).to_owned());
        }
        let env = Env {
            dir,
            port,
            vars,
            listener: Mutex::new(Some(listener)),
            watchdog: OnceLock::new(),
        };
        // Started here, on the test's own thread (its name is the test's name).
        env.watchdog();
        env
    }

    /// The reserved listener of [`Env::port`]; panics if it was already used or released.
    fn take_listener(&self) -> std::net::TcpListener {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("the port was already used: one in-process service per Env")
    }

    /// Closes the reserved listener (a process binds the port itself).
    fn release_port(&self) {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The watchdog of this test (started by [`Env::new`]).
    fn watchdog(&self) -> &watchdog::Watchdog {
        self.watchdog
            .get_or_init(|| watchdog::Watchdog::start(self.data_dir().join("magic_master.db")))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The app database (for assertions only).
    pub fn db(&self) -> deadpool_sqlite::Pool {
        shared::db::open_pool(&self.data_dir().join("magic_master.db"), 2).expect("open db")
    }

    /// Files under a directory of the data dir (recursively).
    pub fn files_under(&self, sub: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.data_dir().join(sub)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// The guest token every [`client`] of this test process presents (`X-Guest-Token`), so
/// the jobs it uploads as a guest stay visible to it (jobs belong to their guest session).
pub fn guest_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// An HTTP client acting as this process's guest (see [`guest_token`]).
pub fn client() -> reqwest::Client {
    client_with_guest(guest_token())
}

/// An HTTP client acting as the guest with `token`.
pub fn client_with_guest(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-guest-token",
        reqwest::header::HeaderValue::from_str(token).expect("guest token header"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Uploads a file with form fields; returns status and JSON body.
pub async fn upload(
    base: &str,
    route: &str,
    file: Option<(&str, Vec<u8>)>,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    let r = client()
        .post(format!("{base}{route}"))
        .multipart(form)
        .send()
        .await
        .expect("upload request");
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// POSTs `body` as JSON; returns the status, the JSON answer (Null if none) and the headers.
pub async fn post_json(
    base: &str,
    path: &str,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    answer(client().post(format!("{base}{path}")).json(&body)).await
}

/// Sends `request`; returns the status, the JSON answer (Null if none) and the headers.
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// Queues a mastering job for `bytes`; panics unless 202.
pub async fn submit(base: &str, name: &str, bytes: Vec<u8>) -> String {
    let (status, body) = upload(base, "/api/v2/master", Some((name, bytes)), &[]).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    body["job_id"].as_str().expect("job_id").to_owned()
}

/// GET status JSON.
pub async fn status(base: &str, id: &str) -> Value {
    let r = client()
        .get(format!("{base}/api/master/status/{id}"))
        .send()
        .await
        .expect("status request");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("status json")
}

/// Polls until the job is `done` or `failed` (panics after `timeout`).
pub async fn wait_final(base: &str, id: &str, timeout: Duration) -> Value {
    wait_for(timeout, Duration::from_millis(100), async || {
        let s = status(base, id).await;
        if s["status"] == "done" || s["status"] == "failed" {
            Ok(s)
        } else {
            Err(format!("job {id} not finished: {s}"))
        }
    })
    .await
}

/// Calls `probe` every `every` until it gives `Ok`; once `timeout` has passed, panics with
/// the last `Err` (what the probe saw).
pub async fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "{seen}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Serves `app` on a free port of 127.0.0.1 in the background (a mock of an outside
/// service); returns its address.
pub async fn serve_local(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// GETs `url` as this process's guest (see [`client`]).
pub async fn fetch(url: String) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// GETs `url` and parses the answer as JSON, whatever its status.
pub async fn get_json(url: String) -> Value {
    fetch(url).await.json().await.unwrap()
}

/// GETs `url`, asserts 200, and returns the JSON answer.
pub async fn get_json_ok(url: String) -> Value {
    let r = fetch(url.clone()).await;
    assert_eq!(r.status().as_u16(), 200, "{url}");
    r.json().await.unwrap()
}

/// GETs `url` and returns the answer's text, whatever its status.
pub async fn get_text(url: String) -> String {
    fetch(url).await.text().await.unwrap()
}

/// The job row, read from the database.
pub async fn job_row(env: &Env, id: &str) -> shared::jobs::JobRow {
    let pool = env.db();
    shared::jobs::get(&pool, id)
        .await
        .expect("read job")
        .expect("job row exists")
}

/// The user row, read from the database.
pub async fn user_row(env: &Env, id: i64) -> shared::accounts::User {
    shared::accounts::by_id(&env.db(), id)
        .await
        .unwrap()
        .expect("user row")
}

/// Counts rows of a table (app or queue).
pub async fn count_rows(env: &Env, table: &str) -> i64 {
    query_one(env, format!("SELECT COUNT(*) FROM {table}")).await
}

/// The first column of the first row `query` gives (a count, a stored value).
pub async fn query_one<T: FromSql + Send + 'static>(env: &Env, query: impl Into<String>) -> T {
    let query = query.into();
    shared::db::with_conn(&env.db(), move |c| c.query_row(&query, [], |r| r.get(0)))
        .await
        .unwrap()
}

/// Runs SQL `statements` on the app database (to set up a state the API does not offer).
pub async fn sql(env: &Env, statements: impl Into<String>) {
    let statements = statements.into();
    shared::db::with_conn(&env.db(), move |c| c.execute_batch(&statements))
        .await
        .unwrap();
}

/// Reads one HTTP/1.1 response from `reader` (a raw socket of a hand-written request): until
/// the head and its `Content-Length` body have arrived, the server closes, or the read times
/// out. Returns the bytes read.
pub fn read_raw_response(mut reader: impl std::io::Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let content_length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + content_length {
                break;
            }
        }
    }
    buf
}
