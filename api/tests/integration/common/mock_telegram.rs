//! A mock Telegram Bot API (axum, in the test process): answers every method call in the
//! Bot API's wire format with the sent message and records the call.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (path, body) of each call the mock received.
type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// A running mock Bot API.
pub struct MockBot {
    /// Base URL (the API's `TELEGRAM_API_URL`).
    pub url: String,
    calls: Calls,
}

/// The `text` field of a JSON call body ("" when there is none).
pub fn text_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl MockBot {
    /// Starts the mock on a free port of 127.0.0.1.
    pub async fn start() -> MockBot {
        use axum::extract::{Path, State};
        async fn handler(
            State(calls): State<Calls>,
            Path(path): Path<String>,
            body: String,
        ) -> axum::Json<Value> {
            let text = text_of(&body);
            calls.lock().unwrap().push((path, body));
            axum::Json(json!({"ok": true, "result": {
                "message_id": 7, "date": 1_764_486_000,
                "chat": {"id": 42, "type": "private", "first_name": "Ops"},
                "from": {"id": 123, "is_bot": true, "first_name": "MagicMasterBot"},
                "text": text
            }}))
        }
        let calls: Calls = Arc::default();
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(handler))
            .with_state(calls.clone());
        let url = format!("http://{}", super::serve_local(app).await);
        MockBot { url, calls }
    }

    /// The settings (`MAGIC_MASTER_*` suffixes) that send the API's alerts here: bot token
    /// `123456:TEST-token`, admin chat 42.
    pub fn settings(&self) -> [(&'static str, &str); 3] {
        [
            ("TELEGRAM_BOT_TOKEN", "123456:TEST-token"),
            ("TELEGRAM_ADMIN_CHAT_ID", "42"),
            ("TELEGRAM_API_URL", &self.url),
        ]
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until at least `n` calls arrived or `timeout` passed; returns the calls then.
    pub async fn wait_calls(&self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls();
            if calls.len() >= n || Instant::now() > deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`MockBot::wait_calls`], the text of each message.
    pub async fn wait_texts(&self, n: usize, timeout: Duration) -> Vec<String> {
        let calls = self.wait_calls(n, timeout).await;
        calls.iter().map(|(_, body)| text_of(body)).collect()
    }
}
