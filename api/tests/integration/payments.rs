//! Payments against the service run in this test process (the real API binary for the one
//! test that reads its log) and a mock YooKassa (axum, in this process too) that
//! speaks YooKassa's API v3 JSON, checks Basic auth and the Idempotence-Key header and
//! records every request: creation, the webhook's IP whitelist and trusted proxies, forged,
//! replayed and concurrent notifications, cancel, refund (full, partial, repeated, in the
//! wrong currency), YooKassa down, demo mode, payment ownership; plus CORS, the global rate
//! limit and security headers on the new routes.

use crate::common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SHOP_ID: &str = "506751";
const SECRET_KEY: &str = "test_Fh8hUAVVBGUGbjmlzba6TB0iyUbos_lueTHE-axOwM0";
/// Inside YooKassa's published range 185.71.76.0/27.
const YOOKASSA_IP: &str = "185.71.76.7";

fn expected_auth() -> String {
    format!(
        "Basic {}",
        base64(
            format!("{SHOP_ID}:{SECRET_KEY}").as_bytes(),
            BASE64_STANDARD,
            true
        )
    )
}

/// One request the mock received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    authorization: Option<String>,
    idempotence_key: Option<String>,
    body: Value,
}

#[derive(Default)]
struct MockState {
    payments: HashMap<String, Value>,
    by_key: HashMap<String, String>,
    requests: Vec<Recorded>,
    down: bool,
}

/// The mock YooKassa: `POST /v3/payments`, `GET /v3/payments/{id}`.
#[derive(Clone)]
struct MockYooKassa {
    url: String,
    state: Arc<Mutex<MockState>>,
}

fn yk_error(status: StatusCode, code: &str, description: &str) -> (StatusCode, axum::Json<Value>) {
    (
        status,
        axum::Json(json!({
            "type": "error",
            "id": uuid::Uuid::new_v4().to_string(),
            "code": code,
            "description": description,
        })),
    )
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// YooKassa's answer when it is down or the credentials are wrong; None when it serves.
fn refusal(down: bool, headers: &HeaderMap) -> Option<(StatusCode, axum::Json<Value>)> {
    if down {
        return Some(yk_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_server_error",
            "down",
        ));
    }
    if header(headers, "authorization") != Some(expected_auth()) {
        return Some(yk_error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Authentication by given credentials failed",
        ));
    }
    None
}

impl MockYooKassa {
    async fn start() -> MockYooKassa {
        use axum::extract::{Path, State};
        type S = Arc<Mutex<MockState>>;
        fn record(s: &S, method: &str, path: String, headers: &HeaderMap, body: Value) {
            s.lock().unwrap().requests.push(Recorded {
                method: method.into(),
                path,
                authorization: header(headers, "authorization"),
                idempotence_key: header(headers, "idempotence-key"),
                body,
            });
        }
        async fn create(
            State(s): State<S>,
            headers: HeaderMap,
            body: String,
        ) -> (StatusCode, axum::Json<Value>) {
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            record(&s, "POST", "/v3/payments".into(), &headers, body.clone());
            let mut st = s.lock().unwrap();
            if let Some(refused) = refusal(st.down, &headers) {
                return refused;
            }
            let Some(key) = header(&headers, "idempotence-key") else {
                return yk_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Idempotence key is missing",
                );
            };
            if let Some(id) = st.by_key.get(&key) {
                return (StatusCode::OK, axum::Json(st.payments[id].clone()));
            }
            let id = format!("2f{}", &uuid::Uuid::new_v4().to_string()[2..]);
            let payment = json!({
                "id": id,
                "status": "pending",
                "paid": false,
                "amount": body["amount"],
                "confirmation": {
                    "type": "redirect",
                    "confirmation_url": format!("https://yoomoney.ru/checkout/payments/v2/contract?orderId={id}"),
                },
                "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "description": body["description"],
                "metadata": body["metadata"],
                "recipient": {"account_id": SHOP_ID, "gateway_id": "2128429"},
                "refundable": false,
                "test": true,
            });
            st.payments.insert(id.clone(), payment.clone());
            st.by_key.insert(key, id);
            (StatusCode::OK, axum::Json(payment))
        }
        async fn get(
            State(s): State<S>,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> (StatusCode, axum::Json<Value>) {
            record(
                &s,
                "GET",
                format!("/v3/payments/{id}"),
                &headers,
                Value::Null,
            );
            let st = s.lock().unwrap();
            if let Some(refused) = refusal(st.down, &headers) {
                return refused;
            }
            match st.payments.get(&id) {
                Some(p) => (StatusCode::OK, axum::Json(p.clone())),
                None => yk_error(StatusCode::NOT_FOUND, "not_found", "Payment not found"),
            }
        }
        let state: S = Arc::default();
        let app = axum::Router::new()
            .route("/v3/payments", axum::routing::post(create))
            .route("/v3/payments/{id}", axum::routing::get(get))
            .with_state(state.clone());
        let url = format!("http://{}/v3", serve_local(app).await);
        MockYooKassa { url, state }
    }

    fn payment(&self, id: &str) -> Value {
        self.state.lock().unwrap().payments[id].clone()
    }

    /// What the payer did at YooKassa: `succeeded` (paid) or `canceled`.
    fn set_status(&self, id: &str, status: &str) {
        let mut st = self.state.lock().unwrap();
        let p = st.payments.get_mut(id).expect("mock payment");
        p["status"] = json!(status);
        p["paid"] = json!(status == "succeeded");
        if status == "succeeded" {
            p["captured_at"] = json!(chrono::Utc::now().to_rfc3339());
            p["refundable"] = json!(true);
        }
        if status == "canceled" {
            p["cancellation_details"] =
                json!({"party": "yoo_money", "reason": "expired_on_confirmation"});
        }
    }

    /// A full refund through YooKassa's dashboard; returns the refund object.
    fn refund(&self, id: &str) -> Value {
        let amount = self.payment(id)["amount"].clone();
        let (value, currency) = (amount["value"].as_str(), amount["currency"].as_str());
        self.refund_to(id, value.unwrap(), currency.unwrap())
    }

    /// Another refund through YooKassa's dashboard, after which the payment's cumulative
    /// `refunded_amount` is `total` in `currency` (YooKassa's figure over every refund so far);
    /// returns the refund object (its `amount` is this refund's increase).
    fn refund_to(&self, id: &str, total: &str, currency: &str) -> Value {
        let mut st = self.state.lock().unwrap();
        let p = st.payments.get_mut(id).expect("mock payment");
        let kopecks = |v: &Value| {
            shared::payments::amount_minor_units(v.as_str().unwrap_or("0")).unwrap_or(0)
        };
        let before = kopecks(&p["refunded_amount"]["value"]);
        let (now, amount) = (kopecks(&json!(total)), kopecks(&p["amount"]["value"]));
        p["refunded_amount"] = json!({"value": total, "currency": currency});
        p["refundable"] = json!(now < amount);
        json!({
            "id": format!("2f{}", &uuid::Uuid::new_v4().to_string()[2..]),
            "payment_id": id,
            "status": "succeeded",
            "created_at": chrono::Utc::now().to_rfc3339(),
            "amount": {
                "value": shared::payments::format_amount(now.saturating_sub(before)),
                "currency": currency,
            },
        })
    }

    /// The notification of `event` YooKassa sends for the payment as it holds it now.
    fn note(&self, event: &str, id: &str) -> Value {
        notification(event, self.payment(id))
    }

    /// The payer paid: the payment succeeds at YooKassa; returns the notification it sends.
    fn pay(&self, id: &str) -> Value {
        self.set_status(id, "succeeded");
        self.note("payment.succeeded", id)
    }

    /// A forged `payment.succeeded`: the payment as YooKassa holds it, claimed paid.
    fn forged_success(&self, id: &str) -> Value {
        let mut forged = self.payment(id);
        forged["status"] = json!("succeeded");
        forged["paid"] = json!(true);
        notification("payment.succeeded", forged)
    }

    fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    fn gets_of(&self, id: &str) -> usize {
        let path = format!("/v3/payments/{id}");
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count()
    }
}

/// A YooKassa notification for `object`.
fn notification(event: &str, object: Value) -> Value {
    json!({"type": "notification", "event": event, "object": object})
}

async fn create_payment(base: &str, token: &str, plan: &str) -> (u16, Value) {
    post_auth(
        base,
        "/api/payments/create",
        token,
        &json!({ "plan": plan }),
    )
    .await
}

/// Creates a payment for `plan` (asserting 201); returns our id and YooKassa's.
async fn create_live(env: &Env, token: &str, plan: &str) -> (String, String) {
    let (status, created) = create_payment(&env.base_url(), token, plan).await;
    assert_eq!(status, 201, "{created}");
    let id = created["payment_id"].as_str().unwrap().to_owned();
    let provider_id = row(env, &id).await.provider_payment_id.unwrap();
    (id, provider_id)
}

/// POSTs a notification from `source` (the TCP peer, a 127.0.0.0/8 address) with an
/// optional `X-Forwarded-For`.
async fn send_webhook(
    base: &str,
    body: &Value,
    source: &str,
    forwarded_for: Option<&str>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().ok())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut req = client
        .post(format!("{base}/api/payments/webhook"))
        .json(body);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Through the trusted proxy (127.0.0.1) for a client inside YooKassa's range.
async fn from_yookassa(base: &str, body: &Value) -> (u16, Value) {
    send_webhook(base, body, "127.0.0.1", Some(YOOKASSA_IP)).await
}

/// `n` copies of `note` sent [`from_yookassa`] at once; their answers.
async fn concurrent_copies(base: &str, note: &Value, n: usize) -> Vec<(u16, Value)> {
    let mut copies = Vec::new();
    for _ in 0..n {
        let (base, note) = (base.to_owned(), note.clone());
        copies.push(tokio::spawn(
            async move { from_yookassa(&base, &note).await },
        ));
    }
    let mut answers = Vec::new();
    for c in copies {
        answers.push(c.await.unwrap());
    }
    answers
}

/// The string `field` of each item of the JSON array `items`.
fn strings_of<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    let items = items.as_array().unwrap();
    items.iter().map(|p| p[field].as_str().unwrap()).collect()
}

/// The end of the paid tier period `/api/auth/me` reports.
fn tier_end(me: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(me["tier_expires_at"].as_str().unwrap())
        .unwrap()
        .to_utc()
}

async fn row(env: &Env, payment_id: &str) -> shared::payments::Payment {
    shared::payments::get(&env.db(), payment_id)
        .await
        .unwrap()
        .expect("payment row")
}

/// The API in live mode against a fresh mock YooKassa: the mock, the service's settings and
/// data dir, the API (in process), its base URL.
async fn start_live() -> (MockYooKassa, Env, App, String) {
    let (mock, env) = live_env(&[]).await;
    let api = env.spawn_app().await;
    let base = env.base_url();
    (mock, env, api, base)
}

/// A fresh mock YooKassa and the settings of an API in live mode against it, plus `extra`.
async fn live_env(extra: &[(&str, &str)]) -> (MockYooKassa, Env) {
    let mock = MockYooKassa::start().await;
    let mut vars = vec![
        ("EMBEDDED_WORKERS", "0"),
        ("YOOKASSA_SHOP_ID", SHOP_ID),
        ("YOOKASSA_SECRET_KEY", SECRET_KEY),
        ("YOOKASSA_API_URL", mock.url.as_str()),
        (
            "YOOKASSA_RETURN_URL",
            "https://master.example.com/payment/return",
        ),
        // Test requests come from 127.0.0.1: it is the proxy, not YooKassa. The
        // whitelist is left at its default (YooKassa's published ranges).
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    vars.extend_from_slice(extra);
    let env = Env::new(&vars);
    (mock, env)
}

/// Demo mode: the plans say so, a payment is credited at once (tokens and tier), a
/// Telegram message goes out per payment, and another user can neither read nor list it.
#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_credits_at_once_and_payments_are_private() {
    let bot = MockBot::start().await;
    let mut vars = vec![("EMBEDDED_WORKERS", "0")];
    vars.extend(bot.settings());
    let env = Env::new(&vars);
    let _api = env.spawn_app().await;
    let base = env.base_url();

    let r = fetch(format!("{base}/api/payments/plans")).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("content-security-policy"));
    let plans: Value = r.json().await.unwrap();
    assert_eq!(plans["demo"], true);
    assert_eq!(plans["currency"], "RUB");
    let ids = strings_of(&plans["plans"], "id");
    assert_eq!(ids, ["pro_month", "studio_month", "tokens_10", "tokens_50"]);
    assert_eq!(plans["plans"][0]["price"], "490.00");
    assert_eq!(plans["plans"][0]["tier"], "pro");
    assert_eq!(plans["plans"][0]["duration_days"], 30);
    assert!(plans["plans"][0]["tokens"].is_null());
    assert_eq!(plans["plans"][2]["tokens"], 10);

    // Creating needs a login and a known plan.
    let r = client()
        .post(format!("{base}/api/payments/create"))
        .json(&json!({"plan": "tokens_10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (alice, alice_id) = register_user(&base, "alice@example.com").await;
    let (status, body) = create_payment(&base, &alice, "diamond_forever").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unknown-plan")),
        "{body}"
    );

    let (status, tokens) = create_payment(&base, &alice, "tokens_10").await;
    assert_eq!(status, 201, "{tokens}");
    assert_eq!(tokens["status"], "succeeded");
    assert_eq!(tokens["demo"], true);
    assert_eq!(tokens["amount"], "190.00");
    assert_eq!(tokens["currency"], "RUB");
    let tokens_id = tokens["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(tokens_id.len(), 32, "128 random bits in hex");
    assert_eq!(
        tokens["confirmation_url"],
        format!(
            "http://127.0.0.1:{}/payment/return?payment_id={tokens_id}",
            env.port
        )
    );
    let me = get_me(&base, &alice).await;
    assert_eq!(me["tokens"], 10);
    assert_eq!(me["tier"], "free");

    let before = chrono::Utc::now();
    let (status, pro) = create_payment(&base, &alice, "pro_month").await;
    assert_eq!(status, 201, "{pro}");
    let me = get_me(&base, &alice).await;
    assert_eq!(me["tier"], "pro");
    let days = (tier_end(&me) - before).num_seconds() as f64 / 86_400.0;
    assert!((days - 30.0).abs() < 0.01, "{days} days");
    let stored = row(&env, &tokens_id).await;
    assert!(stored.demo && stored.credited_at.is_some() && stored.provider_payment_id.is_none());
    assert_eq!(user_row(&env, alice_id).await.tokens, 10);

    // The payer reads and lists them, newest first.
    let (status, one) = get_auth(&base, &format!("/api/payments/{tokens_id}"), &alice).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        (one["status"].as_str(), one["credited"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    let (_, list) = get_auth(&base, "/api/payments", &alice).await;
    let listed = strings_of(&list["payments"], "payment_id");
    assert_eq!(
        listed,
        [pro["payment_id"].as_str().unwrap(), tokens_id.as_str()]
    );

    // Another user gets 404 and an empty list; no token is 401.
    let (bob, _) = register_user(&base, "bob@example.com").await;
    let (status, body) = get_auth(&base, &format!("/api/payments/{tokens_id}"), &bob).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get_auth(
        &base,
        "/api/payments/0123456789abcdef0123456789abcdef",
        &bob,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (_, list) = get_auth(&base, "/api/payments", &bob).await;
    assert_eq!(list["payments"], json!([]));
    let r = fetch(format!("{base}/api/payments/{tokens_id}")).await;
    assert_eq!(r.status().as_u16(), 401);

    // One Telegram message per payment, not throttled into one.
    let msgs = bot.wait_texts(2, Duration::from_secs(15)).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs.iter()
            .all(|m| m.contains("payment credited") && m.contains("demo")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains(&tokens_id) && m.contains("alice@example.com")),
        "{msgs:?}"
    );

    // An upgrade is sold; a plan below the tier in force is refused before anything is made.
    let (status, studio) = create_payment(&base, &alice, "studio_month").await;
    assert_eq!(status, 201, "{studio}");
    let me = get_me(&base, &alice).await;
    assert_eq!(me["tier"], "studio");
    let (status, body) = create_payment(&base, &alice, "pro_month").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("plan-below-current-tier")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("studio"),
        "{body}"
    );
    let (_, list) = get_auth(&base, "/api/payments", &alice).await;
    assert_eq!(list["payments"].as_array().unwrap().len(), 3, "{list}");
}

/// Live creation: Basic auth, Idempotence-Key = our id, return URL, metadata and amount
/// reach YooKassa; the row is pending with YooKassa's id; nothing is credited yet.
#[tokio::test(flavor = "multi_thread")]
async fn create_calls_yookassa_with_auth_idempotence_key_and_metadata() {
    let (mock, env, _api, base) = start_live().await;
    let plans = get_json(format!("{base}/api/payments/plans")).await;
    assert_eq!(plans["demo"], false);

    let (token, user_id) = register_user(&base, "carol@example.com").await;
    let (status, created) = create_payment(&base, &token, "studio_month").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["demo"], false);
    assert_eq!(created["amount"], "1490.00");
    let id = created["payment_id"].as_str().unwrap();

    let posts: Vec<Recorded> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let sent = &posts[0];
    assert_eq!(
        sent.authorization.as_deref(),
        Some(expected_auth().as_str())
    );
    assert_eq!(sent.idempotence_key.as_deref(), Some(id));
    assert_eq!(
        sent.body["amount"],
        json!({"value": "1490.00", "currency": "RUB"})
    );
    assert_eq!(sent.body["capture"], true);
    assert_eq!(sent.body["confirmation"]["type"], "redirect");
    assert_eq!(
        sent.body["confirmation"]["return_url"],
        format!("https://master.example.com/payment/return?payment_id={id}")
    );
    assert_eq!(sent.body["metadata"]["payment_id"], id);
    assert_eq!(sent.body["metadata"]["user_id"], user_id.to_string());
    assert_eq!(sent.body["metadata"]["plan"], "studio_month");
    assert!(
        sent.body["description"]
            .as_str()
            .unwrap()
            .contains("Studio")
    );

    let stored = row(&env, id).await;
    let provider_id = stored
        .provider_payment_id
        .clone()
        .expect("YooKassa id stored");
    assert_eq!(
        created["confirmation_url"],
        mock.payment(&provider_id)["confirmation"]["confirmation_url"]
    );
    assert_eq!(stored.status, shared::payments::PaymentStatus::Pending);
    assert!(stored.credited_at.is_none() && !stored.demo);
    let me = get_me(&base, &token).await;
    assert_eq!(
        (me["tier"].as_str(), me["tokens"].as_i64()),
        (Some("free"), Some(0))
    );
    // While pending, the payer's status read asks YooKassa and still sees pending.
    let (status, one) = get_auth(&base, &format!("/api/payments/{id}"), &token).await;
    assert_eq!(
        (status, one["status"].as_str()),
        (200, Some("pending")),
        "{one}"
    );
    assert_eq!(one["confirmation_url"], created["confirmation_url"]);
}

/// The whitelist: the TCP peer when it is not a trusted proxy (its X-Forwarded-For is
/// ignored), the forwarded client when it is. An accepted notification is confirmed with
/// YooKassa before anything else; garbage is 400.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_whitelist_honours_forwarded_for_only_from_trusted_proxies() {
    let (mock, _env, _api, base) = start_live().await; // `_env` keeps the data dir
    let note = notification(
        "payment.succeeded",
        json!({"id": "2f00aaaa-000f-5000-9000-000000000001", "status": "succeeded", "paid": true,
               "amount": {"value": "490.00", "currency": "RUB"}}),
    );
    // Direct from 127.0.0.1 (trusted proxy, but no forwarded client): not YooKassa.
    let (status, body) = send_webhook(&base, &note, "127.0.0.1", None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "webhook-forbidden");
    // From 127.0.0.2, not a trusted proxy, claiming to forward for YooKassa: still 403.
    let (status, body) = send_webhook(&base, &note, "127.0.0.2", Some(YOOKASSA_IP)).await;
    assert_eq!(status, 403, "{body}");
    // Through the trusted proxy but for an address outside the whitelist: 403.
    let (status, _) = send_webhook(&base, &note, "127.0.0.1", Some("203.0.113.9")).await;
    assert_eq!(status, 403);
    assert!(
        mock.requests().is_empty(),
        "nothing was asked of YooKassa before the whitelist"
    );

    // Through the trusted proxy for YooKassa's address: accepted, confirmed, unknown.
    let (status, body) = from_yookassa(&base, &note).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ignored"], "unknown payment");
    assert_eq!(mock.gets_of("2f00aaaa-000f-5000-9000-000000000001"), 1);
    // IPv6 range too (2a02:5180::/32).
    let (status, _) = send_webhook(&base, &note, "127.0.0.1", Some("2a02:5180::17")).await;
    assert_eq!(status, 200);
    // Unparsable from an accepted address: 400.
    for bad in [
        json!("hello"),
        json!({"type": "notification"}),
        json!({"type": "x", "event": "payment.succeeded", "object": {"id": "a"}}),
    ] {
        let (status, body) = from_yookassa(&base, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // The webhook is exempt from the global limit and carries the security headers.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/payments/webhook"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

/// A notification is only a hint: forged ones (YooKassa says pending) credit nothing; the
/// real one credits once; a replay and ten concurrent copies change nothing more.
#[tokio::test(flavor = "multi_thread")]
async fn forged_replayed_and_concurrent_notifications_credit_exactly_once() {
    let (mock, env, _api, base) = start_live().await;
    let (token, user_id) = register_user(&base, "dave@example.com").await;

    for (plan, check_tokens) in [("tokens_50", true), ("pro_month", false)] {
        let (id, provider_id) = create_live(&env, &token, plan).await;

        // Forged: the body claims succeeded, YooKassa says pending.
        let note = mock.forged_success(&provider_id);
        let (status, body) = from_yookassa(&base, &note).await;
        assert_eq!(status, 200, "{body}");
        let stored = row(&env, &id).await;
        assert_eq!(stored.status, shared::payments::PaymentStatus::Pending);
        assert!(stored.credited_at.is_none());
        let user = user_row(&env, user_id).await;
        assert_eq!(user.tokens, if check_tokens { 0 } else { 50 });

        // Paid for real: one notification credits.
        let note = mock.pay(&provider_id);
        let (status, body) = from_yookassa(&base, &note).await;
        assert_eq!((status, &body), (200, &json!({"ok": true})));
        let after_first = user_row(&env, user_id).await;
        // A replay, then ten concurrent copies.
        let (status, _) = from_yookassa(&base, &note).await;
        assert_eq!(status, 200);
        for (status, body) in concurrent_copies(&base, &note, 10).await {
            assert_eq!(status, 200, "{body}");
        }
        let user = user_row(&env, user_id).await;
        assert_eq!(user, after_first, "replays changed the account");
        let stored = row(&env, &id).await;
        assert_eq!(stored.status, shared::payments::PaymentStatus::Succeeded);
        assert!(stored.credited_at.is_some());
        assert!(
            mock.gets_of(&provider_id) >= 13,
            "each copy was confirmed with YooKassa"
        );
        let me = get_me(&base, &token).await;
        assert_eq!(me["tokens"], 50, "{me}");
        if !check_tokens {
            assert_eq!(me["tier"], "pro");
            let days = (tier_end(&me) - chrono::Utc::now()).num_seconds() as f64 / 86_400.0;
            assert!((29.99..=30.0).contains(&days), "credited once: {days} days");
        }
    }
}

/// payment.canceled credits nothing (and a later forged success cannot); refund.succeeded
/// takes back what the payment gave, once, tokens never below zero, a tier period ended.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_credits_nothing_and_refund_takes_back_once() {
    let (mock, env, _api, base) = start_live().await;
    let (token, user_id) = register_user(&base, "erin@example.com").await;
    let pool = env.db();

    // Canceled.
    let (canceled_id, provider_id) = create_live(&env, &token, "tokens_50").await;
    mock.set_status(&provider_id, "canceled");
    let (status, _) = from_yookassa(&base, &mock.note("payment.canceled", &provider_id)).await;
    assert_eq!(status, 200);
    assert_eq!(
        row(&env, &canceled_id).await.status,
        shared::payments::PaymentStatus::Canceled
    );
    assert_eq!(user_row(&env, user_id).await.tokens, 0);
    let (status, _) = from_yookassa(&base, &mock.forged_success(&provider_id)).await;
    assert_eq!(status, 200);
    assert_eq!(user_row(&env, user_id).await.tokens, 0);
    let (_, one) = get_auth(&base, &format!("/api/payments/{canceled_id}"), &token).await;
    assert_eq!(
        (one["status"].as_str(), one["credited"].as_bool()),
        (Some("canceled"), Some(false))
    );

    // Tokens: credited, then refunded once, never below zero.
    let (tokens_id, provider_id) = create_live(&env, &token, "tokens_10").await;
    from_yookassa(&base, &mock.pay(&provider_id)).await;
    assert_eq!(user_row(&env, user_id).await.tokens, 10);
    // The user spends 7 of them, then the payment is refunded.
    shared::accounts::grant_tokens(&pool, user_id, -7)
        .await
        .unwrap();
    let refund = mock.refund(&provider_id);
    let note = notification("refund.succeeded", refund);
    let (status, body) = from_yookassa(&base, &note).await;
    assert_eq!((status, &body), (200, &json!({"ok": true})));
    assert_eq!(user_row(&env, user_id).await.tokens, 0, "clamped at 0");
    let stored = row(&env, &tokens_id).await;
    assert_eq!(stored.status, shared::payments::PaymentStatus::Refunded);
    // An admin grants 4 tokens; replays (and a late payment.succeeded) take nothing more.
    shared::accounts::grant_tokens(&pool, user_id, 4)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(from_yookassa(&base, &note).await.0, 200);
    }
    from_yookassa(&base, &mock.note("payment.succeeded", &provider_id)).await;
    let me = get_me(&base, &token).await;
    assert_eq!(me["tokens"], 4, "{me}");

    // Tier: credited, then refunded → the paid period ends.
    let (pro_id, provider_id) = create_live(&env, &token, "pro_month").await;
    from_yookassa(&base, &mock.pay(&provider_id)).await;
    let me = get_me(&base, &token).await;
    assert_eq!(me["tier"], "pro");
    let note = notification("refund.succeeded", mock.refund(&provider_id));
    for (status, _) in concurrent_copies(&base, &note, 5).await {
        assert_eq!(status, 200);
    }
    let me = get_me(&base, &token).await;
    assert_eq!(me["tier"], "free", "{me}");
    assert!(me["tier_expires_at"].is_null(), "{me}");
    assert_eq!(me["tokens"], 4);
    assert_eq!(
        row(&env, &pro_id).await.status,
        shared::payments::PaymentStatus::Refunded
    );
}

/// The payment as `GET /api/payments/{id}` shows it to the payer.
async fn shown(base: &str, token: &str, id: &str) -> Value {
    let (status, one) = get_auth(base, &format!("/api/payments/{id}"), token).await;
    assert_eq!(status, 200, "{one}");
    one
}

/// Waits for at least `n` Telegram messages, then a little longer for any extra one; all of
/// them.
async fn settled_texts(bot: &MockBot, n: usize) -> Vec<String> {
    bot.wait_texts(n, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bot.wait_texts(0, Duration::ZERO).await
}

/// Two partial refunds of a 50-token pack (790.00): 40 % takes back 20 tokens, the rest
/// (100 %) the other 30. Replays, ten concurrent copies of each notification and the older
/// notification after the newer change nothing more: the balance, the stored figure and
/// the one Telegram message per refund say so.
#[tokio::test(flavor = "multi_thread")]
async fn partial_refunds_take_back_tokens_in_proportion_exactly_once() {
    let bot = MockBot::start().await;
    let (mock, env) = live_env(&bot.settings()).await;
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let (token, user_id) = register_user(&base, "hana@example.com").await;
    let pool = env.db();
    // Seven tokens from elsewhere, which no refund of this pack may take.
    shared::accounts::grant_tokens(&pool, user_id, 7)
        .await
        .unwrap();
    let (id, provider_id) = create_live(&env, &token, "tokens_50").await;
    from_yookassa(&base, &mock.pay(&provider_id)).await;
    assert_eq!(get_me(&base, &token).await["tokens"], 57);
    let one = shown(&base, &token, &id).await;
    assert_eq!(one["refunded_amount"], "0.00", "{one}");

    // 316.00 of 790.00 refunded: ceil(50 × 0.4) = 20 tokens back; still succeeded.
    let first = notification(
        "refund.succeeded",
        mock.refund_to(&provider_id, "316.00", "RUB"),
    );
    assert_eq!(first["object"]["amount"]["value"], "316.00");
    let (status, body) = from_yookassa(&base, &first).await;
    assert_eq!((status, &body), (200, &json!({"ok": true})));
    assert_eq!(get_me(&base, &token).await["tokens"], 37);
    let one = shown(&base, &token, &id).await;
    assert_eq!(
        (one["status"].as_str(), one["refunded_amount"].as_str()),
        (Some("succeeded"), Some("316.00")),
        "{one}"
    );
    assert_eq!(one["refunded"], false);
    let (_, list) = get_auth(&base, "/api/payments", &token).await;
    assert_eq!(list["payments"][0]["refunded_amount"], "316.00", "{list}");
    let stored = row(&env, &id).await;
    assert_eq!(stored.refunded_kopecks, 31_600);
    assert!(stored.refunded_at.is_none());
    // A replay and ten concurrent copies of the first notification: nothing more.
    assert_eq!(from_yookassa(&base, &first).await.0, 200);
    for (status, body) in concurrent_copies(&base, &first, 10).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(user_row(&env, user_id).await.tokens, 37);
    assert_eq!(row(&env, &id).await.refunded_kopecks, 31_600);

    // The rest: 790.00 in total, the other 30 tokens, once however many copies arrive.
    let second = notification(
        "refund.succeeded",
        mock.refund_to(&provider_id, "790.00", "RUB"),
    );
    assert_eq!(second["object"]["amount"]["value"], "474.00");
    for (status, body) in concurrent_copies(&base, &second, 10).await {
        assert_eq!(status, 200, "{body}");
    }
    // Replays of both (YooKassa now reports 790.00 for each) and a late payment.succeeded.
    for note in [
        &second,
        &first,
        &mock.note("payment.succeeded", &provider_id),
    ] {
        assert_eq!(from_yookassa(&base, note).await.0, 200);
    }
    let me = get_me(&base, &token).await;
    assert_eq!(
        me["tokens"], 7,
        "the pack's 50 taken back, the other 7 kept: {me}"
    );
    let stored = row(&env, &id).await;
    assert_eq!(stored.status, shared::payments::PaymentStatus::Refunded);
    assert_eq!(stored.refunded_kopecks, 79_000);
    let one = shown(&base, &token, &id).await;
    assert_eq!(
        (one["status"].as_str(), one["refunded_amount"].as_str()),
        (Some("refunded"), Some("790.00")),
        "{one}"
    );
    assert_eq!(
        (one["refunded"].as_bool(), one["credited"].as_bool()),
        (Some(true), Some(true))
    );

    // Telegram: credited, partly refunded, refunded in full; one message each.
    let texts = settled_texts(&bot, 3).await;
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[0].contains("payment credited"), "{texts:#?}");
    assert!(
        texts[1].contains("partly refunded: 316.00 RUB")
            && texts[1].contains("316.00 of 790.00 RUB refunded in total")
            && texts[1].contains("20 tokens taken back")
            && texts[1].contains(&id),
        "{texts:#?}"
    );
    assert!(
        texts[2].contains("refunded in full: 790.00 RUB (this refund 474.00 RUB)")
            && texts[2].contains("30 tokens taken back"),
        "{texts:#?}"
    );
}

/// A Pro month (490.00) refunded 100.00, then 200.00 in total: the paid period is shortened
/// by ceil(30 × 100/490) = 7 days, then by 13 days in total; the full refund ends the tier,
/// as it always did.
#[tokio::test(flavor = "multi_thread")]
async fn partial_refunds_shorten_the_paid_period_in_proportion() {
    let (mock, env, _api, base) = start_live().await;
    let (token, user_id) = register_user(&base, "ivan@example.com").await;
    let (id, provider_id) = create_live(&env, &token, "pro_month").await;
    from_yookassa(&base, &mock.pay(&provider_id)).await;
    let stored_end = |u: &shared::accounts::User| u.tier_expires_at.unwrap();
    let paid = user_row(&env, user_id).await;
    assert_eq!(paid.tier, shared::accounts::Tier::Pro);
    let end0 = stored_end(&paid);

    let note = notification(
        "refund.succeeded",
        mock.refund_to(&provider_id, "100.00", "RUB"),
    );
    for (status, _) in concurrent_copies(&base, &note, 5).await {
        assert_eq!(status, 200);
    }
    let u = user_row(&env, user_id).await;
    assert_eq!(u.tier, shared::accounts::Tier::Pro);
    assert_eq!(end0 - stored_end(&u), chrono::Duration::days(7), "{u:?}");
    let me = get_me(&base, &token).await;
    assert_eq!(
        (me["tier"].as_str(), tier_end(&me)),
        (Some("pro"), stored_end(&u))
    );
    let one = shown(&base, &token, &id).await;
    assert_eq!(
        (one["status"].as_str(), one["refunded_amount"].as_str()),
        (Some("succeeded"), Some("100.00"))
    );

    let note = notification(
        "refund.succeeded",
        mock.refund_to(&provider_id, "200.00", "RUB"),
    );
    for _ in 0..2 {
        assert_eq!(from_yookassa(&base, &note).await.0, 200);
    }
    let u = user_row(&env, user_id).await;
    assert_eq!(end0 - stored_end(&u), chrono::Duration::days(13), "{u:?}");

    let note = notification("refund.succeeded", mock.refund(&provider_id));
    for (status, _) in concurrent_copies(&base, &note, 5).await {
        assert_eq!(status, 200);
    }
    let me = get_me(&base, &token).await;
    assert_eq!(me["tier"], "free", "{me}");
    assert!(me["tier_expires_at"].is_null(), "{me}");
    let one = shown(&base, &token, &id).await;
    assert_eq!(
        (one["status"].as_str(), one["refunded_amount"].as_str()),
        (Some("refunded"), Some("490.00"))
    );
}

/// A refunded_amount in another currency (or not an amount at all) changes nothing, is
/// logged as an error and sent to Telegram; the right figure afterwards still applies. A
/// refund reported on a payment YooKassa still holds as pending changes nothing either.
#[tokio::test(flavor = "multi_thread")]
async fn a_refund_in_another_currency_changes_nothing_and_is_logged() {
    // Process-level: reads the API process's log.
    let bot = MockBot::start().await;
    let (mock, env) = live_env(&bot.settings()).await;
    let api = env.start_api().await;
    let base = env.base_url();
    let (token, user_id) = register_user(&base, "jana@example.com").await;
    let (id, provider_id) = create_live(&env, &token, "tokens_10").await;
    from_yookassa(&base, &mock.pay(&provider_id)).await;
    assert_eq!(user_row(&env, user_id).await.tokens, 10);

    let note = notification(
        "refund.succeeded",
        mock.refund_to(&provider_id, "95.00", "USD"),
    );
    let (status, body) = from_yookassa(&base, &note).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ignored"], "payment does not match", "{body}");
    assert_eq!(user_row(&env, user_id).await.tokens, 10);
    let stored = row(&env, &id).await;
    assert_eq!(
        (stored.status, stored.refunded_kopecks),
        (shared::payments::PaymentStatus::Succeeded, 0)
    );
    wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        async || {
            if api
                .logs
                .contains(&["ERROR", "refunded_amount cannot be used", "USD", &id])
            {
                Ok(())
            } else {
                Err("no error logged for the USD refund".to_owned())
            }
        },
    )
    .await;

    // Not an amount at all: the same.
    mock.refund_to(&provider_id, "9.5e1", "RUB");
    let (status, _) = from_yookassa(&base, &note).await;
    assert_eq!(status, 200);
    assert_eq!(user_row(&env, user_id).await.tokens, 10);
    assert_eq!(row(&env, &id).await.refunded_kopecks, 0);

    // YooKassa's real figure: 95.00 of 190.00 → 5 tokens.
    mock.refund_to(&provider_id, "95.00", "RUB");
    assert_eq!(
        from_yookassa(&base, &note).await,
        (200, json!({"ok": true}))
    );
    assert_eq!(user_row(&env, user_id).await.tokens, 5);
    assert_eq!(row(&env, &id).await.refunded_kopecks, 9_500);

    // A payment still pending at YooKassa that (oddly) reports a refund: nothing.
    let (pending_id, pending_provider) = create_live(&env, &token, "tokens_50").await;
    let note = notification(
        "refund.succeeded",
        mock.refund_to(&pending_provider, "10.00", "RUB"),
    );
    assert_eq!(from_yookassa(&base, &note).await.0, 200);
    let stored = row(&env, &pending_id).await;
    assert_eq!(
        (stored.status, stored.refunded_kopecks, stored.credited_at),
        (shared::payments::PaymentStatus::Pending, 0, None)
    );
    assert_eq!(user_row(&env, user_id).await.tokens, 5);

    // Paid and refunded in USD while our row is pending: the payer's status reads (which ask
    // YooKassa) change nothing and do not repeat the Telegram message at every poll.
    let (polled_id, polled_provider) = create_live(&env, &token, "tokens_10").await;
    mock.set_status(&polled_provider, "succeeded");
    mock.refund_to(&polled_provider, "50.00", "USD");
    for _ in 0..3 {
        let one = shown(&base, &token, &polled_id).await;
        assert_eq!(one["status"], "pending", "{one}");
    }
    assert_eq!(user_row(&env, user_id).await.tokens, 5);
    assert!(
        api.logs
            .contains(&["refunded_amount cannot be used", &polled_id])
    );

    let texts = settled_texts(&bot, 4).await;
    let not_applied: Vec<&String> = texts.iter().filter(|t| t.contains("NOT applied")).collect();
    assert_eq!(not_applied.len(), 2, "{texts:#?}");
    assert!(
        not_applied[0].contains("USD") && not_applied[0].contains(&id),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("partly refunded: 95.00 RUB") && t.contains("5 tokens taken back")),
        "{texts:#?}"
    );
}

/// YooKassa down: creation answers 503 and keeps the row `failed`; a notification answers
/// 503 (so YooKassa retries) and credits nothing; once it is back, the payer's status read
/// confirms and credits (a missed notification is not a lost payment). Unreachable
/// altogether (nothing listening) is 503 too.
#[tokio::test(flavor = "multi_thread")]
async fn yookassa_down_is_503_and_credits_nothing() {
    let (mock, env, _api, base) = start_live().await;
    let (token, user_id) = register_user(&base, "frank@example.com").await;

    let (id, provider_id) = create_live(&env, &token, "tokens_10").await;
    let note = mock.pay(&provider_id);
    mock.set_down(true);
    let (status, body) = from_yookassa(&base, &note).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(user_row(&env, user_id).await.tokens, 0);
    assert!(row(&env, &id).await.credited_at.is_none());
    // The status read cannot confirm either: still pending, nothing credited.
    let (status, one) = get_auth(&base, &format!("/api/payments/{id}"), &token).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("pending")));

    let (status, body) = create_payment(&base, &token, "tokens_50").await;
    assert_eq!(status, 503, "{body}");
    let (_, list) = get_auth(&base, "/api/payments", &token).await;
    assert_eq!(list["payments"][0]["status"], "failed", "{list}");
    assert_eq!(list["payments"][0]["plan"], "tokens_50");

    mock.set_down(false);
    let (status, one) = get_auth(&base, &format!("/api/payments/{id}"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(
        (one["status"].as_str(), one["credited"].as_bool()),
        (Some("succeeded"), Some(true))
    );
    assert_eq!(user_row(&env, user_id).await.tokens, 10);
    // The retried notification then finds it done.
    assert_eq!(from_yookassa(&base, &note).await.0, 200);
    assert_eq!(user_row(&env, user_id).await.tokens, 10);

    // Nothing listening at the API URL at all.
    let dead = format!("http://127.0.0.1:{}/v3", free_port());
    let env2 = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("YOOKASSA_SHOP_ID", SHOP_ID),
        ("YOOKASSA_SECRET_KEY", SECRET_KEY),
        ("YOOKASSA_API_URL", &dead),
    ]);
    let _api2 = env2.spawn_app().await;
    let (token, _) = register_user(&env2.base_url(), "gina@example.com").await;
    let (status, body) = create_payment(&env2.base_url(), &token, "pro_month").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable");
}

/// A listed origin gets Access-Control-Allow-Origin (also on preflight, which allows the
/// Authorization and X-Guest-Token headers); an unlisted one gets no CORS headers.
#[tokio::test(flavor = "multi_thread")]
async fn cors_allows_listed_origins_only() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        (
            "CORS_ORIGINS",
            "https://master.example.com, https://www.master.example.com",
        ),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let get = |origin: &'static str| {
        client()
            .get(format!("{base}/api/payments/plans"))
            .header("origin", origin)
            .send()
    };
    let r = get("https://www.master.example.com").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://www.master.example.com"
    );
    let r = get("https://evil.example.net").await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "same-origin-less clients still get an answer"
    );
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );

    let preflight = |origin: &'static str| {
        client()
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/api/payments/create"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, x-guest-token",
            )
            .send()
    };
    let r = preflight("https://master.example.com").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(
        h["access-control-allow-origin"],
        "https://master.example.com"
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["authorization", "content-type", "x-guest-token"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        h["x-content-type-options"], "nosniff",
        "security headers on preflight too"
    );
    let r = preflight("https://evil.example.net").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Unset: any origin.
    let open = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api2 = open.spawn_app().await;
    let r = client()
        .get(format!("{}/api/styles", open.base_url()))
        .header("origin", "https://anything.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// Over the global limit a client IP gets 429 JSON with Retry-After; other addresses, the
/// health check, metrics and the webhook are not limited.
#[tokio::test(flavor = "multi_thread")]
async fn global_rate_limit_answers_429_with_retry_after() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("GLOBAL_RATE_LIMIT", "5")]);
    let _api = env.spawn_app().await; // its health polls are exempt
    let base = env.base_url();
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().ok())
            .build()
            .unwrap()
    };
    let limited = from("127.0.0.1");
    for i in 0..5 {
        let r = limited
            .get(format!("{base}/api/payments/plans"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "request {i}");
    }
    let r = limited
        .get(format!("{base}/api/styles"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "rate-limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{body}"
    );
    for path in ["/api/health", "/metrics"] {
        let r = limited.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path} is exempt");
    }
    let r = limited
        .post(format!("{base}/api/payments/webhook"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "the webhook is exempt (and refused by its whitelist)"
    );
    // Another client address has its own budget.
    let r = from("127.0.0.2")
        .get(format!("{base}/api/styles"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
