//! Trust at start-up, against the real API binary (its exit status and message): weak JWT
//! secrets and placeholder admin passwords stop start-up, an account squatting
//! `ADMIN_EMAIL` is never promoted. Trust per client, against the service run in this test
//! process: clients rotating inside one IPv6 /64 share their rate limits and guest quota,
//! and a CORS origin configured with an IDN host matches the punycode form browsers send.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a start of the API binary ended.
enum Start {
    /// It exited (status code, its stderr).
    Exited(Option<i32>, String),
    /// It logged "listening" (it was killed at once); its stderr so far.
    Listening(String),
}

/// Runs the API binary with `env`'s variables until it exits or logs that it listens
/// (killed then), at most 20 s.
fn start_outcome(env: &Env) -> Start {
    let mut child = env.api_command().spawn().expect("spawn api");
    let text = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[api] {line}");
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let _ = reader.join();
            let text = text.lock().unwrap().clone();
            return Start::Exited(status.code(), text);
        }
        if text.lock().unwrap().contains("listening") {
            let _ = child.kill();
            let _ = child.wait();
            return Start::Listening(text.lock().unwrap().clone());
        }
        assert!(
            Instant::now() < deadline,
            "the API neither exited nor listened within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the API refuses to start: non-zero exit, a message naming `variable`; returns it.
fn assert_refused(env: &Env, variable: &str, what: &str) -> String {
    match start_outcome(env) {
        Start::Exited(code, text) => {
            assert!(
                code.is_some_and(|c| c != 0),
                "{what}: exit {code:?}\n{text}"
            );
            assert!(text.contains(variable), "{what}: no {variable} in\n{text}");
            text
        }
        Start::Listening(text) => panic!("{what}: the API started\n{text}"),
    }
}

/// 64 random hex characters (what `openssl rand -hex 32` prints).
fn random_hex_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Every weak JWT secret stops start-up with a message naming the variable (and never
/// echoing the secret); a random one starts. A placeholder admin password stops it too.
#[tokio::test(flavor = "multi_thread")]
async fn weak_jwt_secrets_and_placeholder_admin_passwords_refuse_to_start() {
    // Process-level: start-up refusal is an exit status and a message on stderr.
    let random = random_hex_secret();
    let weak = [
        "CHANGE_ME",
        "changeme",
        "secret",
        "",
        // 31 random bytes' worth of hex is still too short.
        &random[..31],
        "your-secret-key-here-change-it-please",
        "CHANGE_ME-CHANGE_ME-CHANGE_ME-CHANGE_ME",
        &"x".repeat(64),
        "abcdabcdabcdabcdabcdabcdabcdabcdabcd",
        "0123456789abcdefghijklmnopqrstuvwxyz",
        "test-secret-0123456789-0123456789-abcdef",
    ];
    for value in weak {
        let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("JWT_SECRET", value)]);
        let text = assert_refused(&env, "MAGIC_MASTER_JWT_SECRET", &format!("{value:?}"));
        assert!(
            text.contains("openssl rand -hex 32"),
            "the message tells how to make one: {text}"
        );
        if value.len() >= 32 {
            assert!(!text.contains(value), "the secret is not echoed: {text}");
        }
    }
    for password in ["CHANGE_ME", "short"] {
        let env = Env::new(&[
            ("EMBEDDED_WORKERS", "0"),
            ("JWT_SECRET", &random),
            ("ADMIN_EMAIL", "root@example.com"),
            ("ADMIN_PASSWORD", password),
        ]);
        assert_refused(&env, "MAGIC_MASTER_ADMIN_PASSWORD", password);
    }
    // A random secret starts, and so does an unset one (generated into the data dir).
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("JWT_SECRET", &random)]);
    let api = env.start_api().await;
    drop(api);
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let api = env.start_api().await;
    drop(api);
    let stored = std::fs::read_to_string(env.data_dir().join("jwt_secret")).unwrap();
    assert_eq!(stored.trim().len(), 64, "a generated 32-byte hex secret");
}

/// An account registered under `ADMIN_EMAIL` before it was configured is not promoted by
/// the configured password: start-up stops and says what to do. The owner's own account
/// (same password) is promoted; a fresh database gets the admin created.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_squatting_the_admin_email_is_not_promoted() {
    // Process-level: start-up refusal (exit status, stderr) and restarts on one database.
    let secret = random_hex_secret();
    let mut env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("JWT_SECRET", &secret)]);
    let api = env.start_api().await;
    let base = env.base_url();
    register(&base, "root@example.com").await; // the squatter, with PASSWORD
    drop(api);

    env.vars
        .insert("MAGIC_MASTER_ADMIN_EMAIL".into(), "Root@Example.com".into());
    env.vars.insert(
        "MAGIC_MASTER_ADMIN_PASSWORD".into(),
        "operator password 1".into(),
    );
    let text = assert_refused(&env, "MAGIC_MASTER_ADMIN_EMAIL", "squatted admin email");
    assert!(
        text.contains("root@example.com") && text.contains("MAGIC_MASTER_ADMIN_PASSWORD"),
        "{text}"
    );
    assert!(!text.contains("operator password 1"), "{text}");
    let is_admin: bool = query_one(
        &env,
        "SELECT is_admin FROM users WHERE email = 'root@example.com'",
    )
    .await;
    assert!(!is_admin, "the squatter was promoted");

    // The account's own password: it is the operator's account, promoted.
    env.vars
        .insert("MAGIC_MASTER_ADMIN_PASSWORD".into(), PASSWORD.into());
    let api = env.start_api().await;
    let (status, body) = login(&base, "root@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["is_admin"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    drop(api);
    // Starting again with the same settings is fine.
    let api = env.start_api().await;
    drop(api);

    // A fresh database: the admin is created with the configured password.
    let fresh = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("JWT_SECRET", &secret),
        ("ADMIN_EMAIL", "boss@example.com"),
        ("ADMIN_PASSWORD", "operator password 1"),
    ]);
    let _api = fresh.start_api().await;
    let (status, body) = login(&fresh.base_url(), "boss@example.com", "operator password 1").await;
    assert_eq!(
        (status, body["is_admin"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
}

/// A client behind the trusted proxy, seen by its `X-Forwarded-For` address.
async fn from(
    base: &str,
    ip: &str,
    method: reqwest::Method,
    path: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    answer(
        client()
            .request(method, format!("{base}{path}"))
            .header("x-forwarded-for", ip),
    )
    .await
}

/// Clients rotating addresses inside one IPv6 /64 share the global and auth rate limits and
/// the guest quota; another /64 does not; IPv4 counts per address, IPv4-mapped IPv6 as IPv4.
#[tokio::test(flavor = "multi_thread")]
async fn ipv6_clients_are_limited_per_64() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("GLOBAL_RATE_LIMIT", "4"),
        ("AUTH_RATE_LIMIT", "2"),
        ("GUEST_DAILY_LIMIT", "1"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let get = reqwest::Method::GET;

    // Global limit: four requests from four addresses of one /64, then 429 for any other.
    for i in 1..=4 {
        let (status, body, _) = from(
            &base,
            &format!("2001:db8:a:1::{i}"),
            get.clone(),
            "/api/styles",
        )
        .await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    for ip in ["2001:db8:a:1::ff", "2001:db8:a:1:ffff:ffff:ffff:fffe"] {
        let (status, body, headers) = from(&base, ip, get.clone(), "/api/styles").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (429, Some("rate-limited")),
            "{ip}"
        );
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    let (status, _, _) = from(&base, "2001:db8:a:2::1", get.clone(), "/api/styles").await;
    assert_eq!(status, 200, "another /64 is another client");
    // IPv4: per address; the IPv4-mapped form is the same client.
    for _ in 0..4 {
        assert_eq!(
            from(&base, "203.0.113.7", get.clone(), "/api/styles")
                .await
                .0,
            200
        );
    }
    assert_eq!(
        from(&base, "::ffff:203.0.113.7", get.clone(), "/api/styles")
            .await
            .0,
        429
    );
    assert_eq!(
        from(&base, "203.0.113.8", get.clone(), "/api/styles")
            .await
            .0,
        200
    );

    // Auth limit: 2 logins a minute per /64.
    let login_from = async |ip: &str| {
        let r = client()
            .post(format!("{base}/api/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "x@example.com", "password": "whatever1"}))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    let mut statuses = Vec::new();
    for ip in ["2001:db8:c:1::1", "2001:db8:c:1::2", "2001:db8:c:1::3"] {
        statuses.push(login_from(ip).await);
    }
    assert_eq!(statuses, vec![401, 401, 429]);
    assert_eq!(login_from("2001:db8:c:2::1").await, 401, "another /64");

    // Guest quota: 1 a day per /64, whatever the guest token.
    let upload_from = async |ip: &str| {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(wav_bytes(1.0)).file_name("a.wav"),
        );
        let r = client_with_guest(&format!("{:0>40}", ip.replace(':', "")))
            .post(format!("{base}/api/v2/master"))
            .header("x-forwarded-for", ip)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (status, body) = upload_from("2001:db8:b:1::1").await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = upload_from("2001:db8:b:1:9999::2").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota-exhausted")),
        "{body}"
    );
    let (status, body) = upload_from("2001:db8:b:2::1").await;
    assert_eq!(status, 202, "another /64: {body}");
}

/// An origin configured with an IDN host (as the runbook shows it) or with upper case and
/// the default port matches what browsers send: the punycode, lower-case, port-less form.
#[tokio::test(flavor = "multi_thread")]
async fn idn_cors_origins_match_their_punycode_form() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        (
            "CORS_ORIGINS",
            "https://ваш-домен.com, https://Master.Example.com:443, http://localhost:8080",
        ),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    // Punycode of "ваш-домен" by Python's `"ваш-домен.com".encode("idna")`.
    for origin in [
        "https://xn----7sbfkf5bif1g.com",
        "https://master.example.com",
        "http://localhost:8080",
    ] {
        let r = client()
            .get(format!("{base}/api/styles"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some(origin),
            "{origin}"
        );
    }
    let r = client()
        .get(format!("{base}/api/styles"))
        .header("origin", "https://xn--80ak6aa92e.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
