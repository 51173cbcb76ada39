//! Hostile clients over loopback (issue 10, items 2 and 3) against the service run in this
//! test process: unfinished request heads, stalled and trickling bodies, too many uploads at
//! once; and against the release API binary, whose resident memory is measured: multipart
//! bodies built to exhaust memory. Each case has a deadline on every wait, and
//! honest requests beside them still succeed.

use crate::common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BOUNDARY: &str = "XHOSTILEX";

/// How a [`RawRequest`] frames its body.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// `Content-Length` of this many bytes (the test may send fewer).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request written by hand on its own connection; the answer is read by a thread at the
/// same time (the server may answer, and close, before the body is all sent).
struct RawRequest {
    stream: TcpStream,
    reader: JoinHandle<Vec<u8>>,
    framing: Framing,
    /// Body bytes written so far.
    sent: usize,
    broken: bool,
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    json: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// Asserts the status and the code, and that `detail` says something.
    fn expect(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "{what}: {self:?}"
        );
        let detail = self.json["detail"].as_str().unwrap_or("");
        assert!(!detail.is_empty(), "{what}: no detail in {:?}", self.json);
        eprintln!("{what}: {status} {code}: {detail}");
    }
}

impl RawRequest {
    /// Connects, sends the head and starts reading; the reader gives up after `patience`.
    fn start(
        port: u16,
        path: &str,
        headers: &[(&str, &str)],
        framing: Framing,
        patience: Duration,
    ) -> RawRequest {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(patience)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = stream.try_clone().unwrap();
        let reader = std::thread::spawn(move || read_raw_response(reader));
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        match framing {
            Framing::Length(n) => head.push_str(&format!("Content-Length: {n}\r\n\r\n")),
            Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
        }
        let broken = stream.write_all(head.as_bytes()).is_err();
        RawRequest {
            stream,
            reader,
            framing,
            sent: 0,
            broken,
        }
    }

    /// A multipart upload to `path`.
    fn multipart(port: u16, path: &str, extra: &[(&str, &str)], framing: Framing) -> RawRequest {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        let mut headers = vec![("Content-Type", content_type.as_str())];
        headers.extend_from_slice(extra);
        RawRequest::start(port, path, &headers, framing, Duration::from_secs(20))
    }

    /// Writes body bytes; false once the connection is broken or the server has answered.
    fn send(&mut self, data: &[u8]) -> bool {
        if self.broken || self.answered() {
            return false;
        }
        let mut frame = Vec::with_capacity(data.len() + 16);
        if self.framing == Framing::Chunked {
            frame.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        }
        frame.extend_from_slice(data);
        if self.framing == Framing::Chunked {
            frame.extend_from_slice(b"\r\n");
        }
        if self.stream.write_all(&frame).is_err() {
            self.broken = true;
            return false;
        }
        self.sent += data.len();
        true
    }

    /// Sends `pieces` until the server answers; returns whether all of them went out.
    fn send_all(&mut self, pieces: impl IntoIterator<Item = Vec<u8>>) -> bool {
        for piece in pieces {
            if !self.send(&piece) {
                return false;
            }
        }
        if self.framing == Framing::Chunked && !self.broken {
            let _ = self.stream.write_all(b"0\r\n\r\n");
        }
        true
    }

    fn answered(&self) -> bool {
        self.reader.is_finished()
    }

    /// The client goes away: the connection is shut down (the reader's copy of the socket
    /// would otherwise keep it open).
    fn leave(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Waits for the answer (at most the reader's patience); status 0 when none came.
    fn answer(self) -> Answer {
        let bytes = self.reader.join().expect("reader thread");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Answer {
            status: head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            head: head.to_owned(),
            json: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }
}

/// The head of a multipart part.
fn part_head(name: &str, file_name: Option<&str>) -> Vec<u8> {
    let file = file_name
        .map(|f| format!("; filename=\"{f}\""))
        .unwrap_or_default();
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n")
        .into_bytes()
}

/// A whole text part.
fn text_part(name: &str, value: &str) -> Vec<u8> {
    let mut part = part_head(name, None);
    part.extend_from_slice(value.as_bytes());
    part.extend_from_slice(b"\r\n");
    part
}

/// Uploads `bytes` to `/api/v2/master` as the client `ip` (the API trusts 127.0.0.1 as a
/// proxy in these tests).
async fn upload_as(base: &str, ip: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("honest.wav"),
    );
    let r = client()
        .post(format!("{base}/api/v2/master"))
        .header("x-forwarded-for", ip)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the temp dir holds `n` files.
async fn wait_temp_files(env: &Env, n: usize) {
    wait_for(
        Duration::from_secs(5),
        Duration::from_millis(20),
        async || {
            let files = env.files_under("tmp");
            if files.len() == n {
                Ok(())
            } else {
                Err(format!("expected {n} temp files, found {files:?}"))
            }
        },
    )
    .await;
}

/// 200 connections that never finish a request head (a partial head, nothing at all, or a
/// finished request and then silence on the kept-alive connection) are all closed by the
/// server within the header timeout plus slack; an honest request meanwhile is answered.
#[tokio::test(flavor = "multi_thread")]
async fn unfinished_request_heads_are_closed_after_the_header_timeout() {
    const TIMEOUT_S: u64 = 2;
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("HEADER_TIMEOUT_SECONDS", &TIMEOUT_S.to_string()),
    ]);
    let _api = env.spawn_app().await;
    let port = env.port;
    let (closed_after, honest) = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut sockets = Vec::new();
        for i in 0..200 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let opening: &[u8] = match i % 3 {
                0 => b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
                1 => b"",
                _ => b"GET /api/styles HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            };
            s.write_all(opening).unwrap();
            sockets.push(s);
        }
        // An honest request while they hang.
        let mut honest = TcpStream::connect(("127.0.0.1", port)).unwrap();
        honest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        honest
            .write_all(b"GET /api/styles HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = honest.read_to_string(&mut answer);

        let deadline = start + Duration::from_secs(TIMEOUT_S + 4);
        let mut closed_after = Vec::new();
        for mut s in sockets {
            let left = deadline.saturating_duration_since(Instant::now());
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 4096];
            let closed = loop {
                match s.read(&mut buf) {
                    Ok(0) => break true,
                    // The answer to a finished request; then the connection idles.
                    Ok(_) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break false;
                    }
                    Err(_) => break true,
                }
            };
            if closed {
                closed_after.push(start.elapsed());
            }
        }
        (closed_after, answer)
    })
    .await
    .unwrap();
    assert!(
        honest.starts_with("HTTP/1.1 200"),
        "honest request: {honest:?}"
    );
    assert_eq!(
        closed_after.len(),
        200,
        "connections closed by the server within {} s",
        TIMEOUT_S + 4
    );
    let first = closed_after.iter().min().unwrap();
    assert!(
        *first >= Duration::from_millis(TIMEOUT_S * 1000 - 500),
        "closed after {first:?}, before the timeout"
    );
    eprintln!(
        "200 unfinished heads closed after {first:?} .. {:?}",
        closed_after.iter().max().unwrap()
    );
}

/// An upload that stalls, and one that trickles a byte a second, are cut off with 408 (the
/// idle timeout; the minimum rate) and their temp files are gone by the time the answer
/// arrives. An honest upload afterwards succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_and_trickling_uploads_are_cut_off_and_leave_no_temp_file() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("BODY_IDLE_TIMEOUT_SECONDS", "2"),
        ("BODY_MIN_RATE_KIB", "4"),
    ]);
    let _api = env.spawn_app().await;
    for (trickle, code, limit) in [(false, "body-timeout", 4.5), (true, "body-too-slow", 5.5)] {
        let mut req =
            RawRequest::multipart(env.port, "/api/v2/master", &[], Framing::Length(1 << 20));
        let start = Instant::now();
        req.send(&part_head("file", Some("slow.wav")));
        req.send(&[0x55; 1000]);
        wait_temp_files(&env, 1).await;
        while trickle && !req.answered() && start.elapsed() < Duration::from_secs(15) {
            req.send(b"x");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let answer = tokio::task::spawn_blocking(move || req.answer())
            .await
            .unwrap();
        let took = start.elapsed().as_secs_f64();
        // At once: the temp file was removed before the answer was written.
        let left = env.files_under("tmp");
        answer.expect(408, code, if trickle { "1 byte/s" } else { "stalled" });
        assert!(left.is_empty(), "temp files left: {left:?}");
        assert!(took < limit, "cut off after {took:.1} s");
        eprintln!("cut off after {took:.1} s");
    }
    submit(&env.base_url(), "honest.wav", wav_bytes(3.0)).await;
}

/// Uploads in flight are capped per client IP (429) and in total (503), both with
/// `Retry-After`; an upload whose client leaves frees its slot and its temp file at once,
/// and honest uploads then get through.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uploads_are_capped_per_client_and_in_total() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("UPLOADS_PER_IP", "2"),
        ("UPLOADS_MAX", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let (a, b, c) = ("203.0.113.1", "203.0.113.2", "203.0.113.3");
    let stalled = |ip: &str| {
        let mut r = RawRequest::multipart(
            env.port,
            "/api/v2/master",
            &[("X-Forwarded-For", ip)],
            Framing::Length(10 << 20),
        );
        r.send(&part_head("file", Some("held.wav")));
        r.send(&[0x55; 1024]);
        r
    };
    let answer = |r: RawRequest| tokio::task::spawn_blocking(move || r.answer());

    let a1 = stalled(a);
    let _a2 = stalled(a);
    wait_temp_files(&env, 2).await;
    let refused = answer(stalled(a)).await.unwrap();
    refused.expect(429, "too-many-uploads", "third upload of one client");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");

    let _b1 = stalled(b);
    wait_temp_files(&env, 3).await;
    let refused = answer(stalled(c)).await.unwrap();
    refused.expect(503, "uploads-busy", "fourth upload in all");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");

    // a1's client leaves: its temp file goes at once and its slot is free again.
    a1.leave();
    wait_temp_files(&env, 2).await;
    let (status, body) = upload_as(&base, a, wav_bytes(3.0)).await;
    assert_eq!(status, 202, "honest upload after a slot was freed: {body}");
    // That upload has ended, so its slot is free too.
    let (status, body) = upload_as(&base, c, wav_bytes(3.0)).await;
    assert_eq!(status, 202, "honest upload of another client: {body}");
}

/// Multipart bodies built to exhaust memory (a part header that never ends, a preamble that
/// never ends, 150,000 tiny fields, 1,000 parts, unknown fields, long text fields, chunked
/// bodies over the limit) and oversized JSON bodies are refused with 400/413, a `detail`
/// and a `code`, before the client has sent them all, and the API's memory stays flat.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_are_refused_early_with_flat_memory() {
    // Process-level: measures the API process's resident memory.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("MAX_UPLOAD_MB", "8")]);
    let api = env.start_api().await;
    let base = env.base_url();
    let port = env.port;
    // Warm up (allocator arenas, the probe's code paths) before measuring.
    submit(&base, "warm.wav", wav_bytes(3.0)).await;
    let rss_before = api.rss_kib();

    type Pieces = Box<dyn Iterator<Item = Vec<u8>> + Send>;
    let block =
        |byte: u8, n: usize| -> Pieces { Box::new(std::iter::repeat_n(vec![byte; 64 * 1024], n)) };
    // (what, route, body pieces, status, code); all but the small ones are far bigger than
    // the socket buffers, so the server must answer before they are all sent.
    let cases: Vec<(&str, &str, Pieces, u16, &str)> = vec![
        (
            "part header that never ends",
            "/api/v2/master",
            Box::new(
                std::iter::once(
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                         filename=\"a.wav\"\r\nX-Long: "
                    )
                    .into_bytes(),
                )
                .chain(block(b'a', 1536)),
            ),
            400,
            "invalid-multipart",
        ),
        (
            "preamble that never ends",
            "/api/v2/master",
            block(b'-', 1536),
            400,
            "invalid-multipart",
        ),
        (
            "150,000 tiny fields",
            "/api/v2/master",
            Box::new((0..150).map(|k| {
                (0..1000)
                    .flat_map(|i| text_part(&format!("f{}", k * 1000 + i), "x"))
                    .collect()
            })),
            400,
            "unknown-field",
        ),
        (
            "1,000 parts",
            "/api/v2/master",
            Box::new((0..1000).map(|_| text_part("style", "edm"))),
            400,
            "duplicate-field",
        ),
        (
            "long text field",
            "/api/v2/master",
            Box::new(std::iter::once(part_head("style", None)).chain(block(b's', 1536))),
            400,
            "invalid-field",
        ),
        (
            "a field analyze does not take",
            "/api/v2/analyze",
            Box::new(std::iter::once(text_part("style", "edm"))),
            400,
            "unknown-field",
        ),
        (
            "chunked file over the limit",
            "/api/v2/analyze",
            Box::new(std::iter::once(part_head("file", Some("big.wav"))).chain(block(0x55, 1024))),
            413,
            "too-large",
        ),
    ];
    for (what, path, pieces, status, code) in cases {
        let answer = tokio::task::spawn_blocking(move || {
            let mut req = RawRequest::multipart(port, path, &[], Framing::Chunked);
            let all_sent = req.send_all(pieces);
            let sent = req.sent;
            (req.answer(), all_sent, sent)
        })
        .await
        .unwrap();
        let (answer, all_sent, sent) = answer;
        answer.expect(status, code, what);
        let small = sent < 1 << 20;
        assert!(
            small || !all_sent,
            "{what}: the server read all {sent} bytes before answering"
        );
    }

    // JSON routes: a declared length over the limit is refused at once, a chunked body as
    // soon as it passes the limit.
    let login = "/api/auth/login";
    let json = [("Content-Type", "application/json")];
    let answer = tokio::task::spawn_blocking(move || {
        let req = RawRequest::start(
            port,
            login,
            &json,
            Framing::Length(1 << 20),
            Duration::from_secs(20),
        );
        req.answer()
    })
    .await
    .unwrap();
    answer.expect(413, "too-large", "JSON body with a 1 MiB Content-Length");
    let (answer, all_sent) = tokio::task::spawn_blocking(move || {
        let mut req = RawRequest::start(
            port,
            login,
            &json,
            Framing::Chunked,
            Duration::from_secs(20),
        );
        let all_sent =
            req.send_all(std::iter::once(b"{\"email\": \"".to_vec()).chain(block(b'e', 256)));
        (req.answer(), all_sent)
    })
    .await
    .unwrap();
    answer.expect(413, "too-large", "chunked JSON body of 16 MiB");
    assert!(!all_sent, "the JSON body was read whole");

    let rss_after = api.rss_kib();
    eprintln!("RSS {rss_before} KiB → {rss_after} KiB");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        env.files_under("tmp").is_empty(),
        "{:?}",
        env.files_under("tmp")
    );

    // Honest requests still work.
    submit(&base, "honest.wav", wav_bytes(3.0)).await;
    let (status, body) = upload(
        &base,
        "/api/v2/analyze",
        Some(("honest.wav", wav_bytes(3.0))),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = post_json(
        &base,
        "/api/auth/register",
        serde_json::json!({"email": "honest@example.com", "password": "a long enough password"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Progress streams (server-sent events, each re-reading its job row four times a second)
/// are capped per client: one client cannot open them without end on its own job. A stream
/// that ends frees its place.
#[tokio::test(flavor = "multi_thread")]
async fn progress_streams_are_capped_per_client() {
    // No worker: the job stays queued, so its streams stay open.
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let id = submit(&base, "queued.wav", wav_bytes(3.0)).await;
    let url = format!("{base}/api/master/progress/{id}");
    let open = || async {
        tokio::time::timeout(Duration::from_secs(10), client().get(&url).send())
            .await
            .expect("progress stream answered in time")
            .expect("progress request")
    };
    let mut held = Vec::new();
    for i in 0..8 {
        let stream = open().await;
        assert_eq!(stream.status(), 200, "stream {i}");
        held.push(stream);
    }
    let refused = open().await;
    assert_eq!(refused.status(), 429, "ninth stream of one client");
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.expect("JSON 429");
    assert_eq!(body["code"], "too-many-streams", "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));

    // One client leaves: its place is free again as soon as the server sees it.
    drop(held.pop());
    let left = Instant::now();
    let reopened = wait_for(
        Duration::from_secs(20),
        Duration::from_millis(200),
        async || {
            let r = open().await;
            match r.status().as_u16() {
                200 => Ok(r),
                other => Err(format!(
                    "a stream of a client that left still counted: {other}"
                )),
            }
        },
    )
    .await;
    eprintln!(
        "place freed {:.1} s after the client left",
        left.elapsed().as_secs_f64()
    );
    assert_eq!(reopened.status(), 200);
}
