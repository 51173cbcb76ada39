//! Telegram alerts (teloxide), sent off the caller's path.
//!
//! [`Alerts::start`] spawns one background task per process that owns the bot; callers only
//! [`Alerts::send`] into a bounded channel, which never waits and never fails the caller (a
//! full channel or a Telegram outage is logged and the alert dropped). Alerts are throttled
//! per [`AlertKind`]: at most one message per kind in each `TELEGRAM_THROTTLE_SECONDS`
//! window; alerts held back are counted and reported in one summary message when the window
//! ends. Configured by `MAGIC_MASTER_TELEGRAM_BOT_TOKEN`, `…_ADMIN_CHAT_ID` and (tests, a
//! proxy) `…_API_URL`; without a token and chat nothing is sent.

use crate::Settings;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, Recipient};
use tokio::sync::mpsc;

/// What an alert is about; each kind is throttled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A job failed for good.
    JobFailed,
    /// `/api/health` turned `degraded`.
    HealthDegraded,
    /// `/api/health` is `ok` again.
    HealthRecovered,
    /// A payment was credited, canceled or refunded. Never throttled: each one is a message.
    Payment,
}

impl AlertKind {
    /// A short name for logs and summaries.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::JobFailed => "job failure",
            AlertKind::HealthDegraded => "health degraded",
            AlertKind::HealthRecovered => "health recovered",
            AlertKind::Payment => "payment",
        }
    }

    /// Whether alerts of this kind are throttled (payments are not: each is news).
    pub fn is_throttled(self) -> bool {
        !matches!(self, AlertKind::Payment)
    }
}

/// Capacity of the alert channel; alerts beyond it are dropped (and logged).
const CHANNEL_CAPACITY: usize = 256;

/// Handle for sending alerts; cheap to clone. The default handle sends nothing.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    tx: Option<mpsc::Sender<(AlertKind, String)>>,
}

impl Alerts {
    /// A handle that drops every alert (Telegram not configured).
    pub fn disabled() -> Alerts {
        Alerts { tx: None }
    }

    /// Starts the sender task when a bot token and a chat id are configured (must be called
    /// inside a tokio runtime); otherwise returns a disabled handle.
    pub fn start(settings: &Settings) -> Alerts {
        let (Some(token), Some(chat)) = (
            settings.telegram_bot_token.as_ref(),
            settings.telegram_admin_chat_id.as_ref(),
        ) else {
            return Alerts::disabled();
        };
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "telegram: cannot build an HTTP client; alerts are off");
                return Alerts::disabled();
            }
        };
        let mut bot = teloxide::Bot::with_client(token.expose(), client);
        if let Some(url) = settings.telegram_api_url.as_deref() {
            match reqwest::Url::parse(url) {
                Ok(u) => bot = bot.set_api_url(u),
                Err(e) => {
                    tracing::error!(url, error = %e, "telegram: invalid API URL; alerts are off");
                    return Alerts::disabled();
                }
            }
        }
        let recipient = match chat.parse::<i64>() {
            Ok(id) => Recipient::Id(ChatId(id)),
            Err(_) => Recipient::ChannelUsername(chat.clone()),
        };
        let window = Duration::from_secs(settings.telegram_throttle_seconds);
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(sender_loop(bot, recipient, window, rx));
        Alerts { tx: Some(tx) }
    }

    /// True when alerts are actually sent somewhere.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an alert; never waits.
    pub fn send(&self, kind: AlertKind, text: impl Into<String>) {
        let Some(tx) = &self.tx else { return };
        if let Err(e) = tx.try_send((kind, text.into())) {
            tracing::warn!(kind = kind.name(), error = %e, "telegram: alert dropped");
        }
    }
}

/// Per-kind throttle state.
#[derive(Debug, Default)]
struct Window {
    last_sent: Option<Instant>,
    held_back: u32,
}

/// Decides whether an alert of one kind may go out now; counts the ones held back.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    kinds: HashMap<AlertKind, Window>,
}

impl Throttle {
    /// At most one message per kind per `window`.
    pub fn new(window: Duration) -> Throttle {
        Throttle {
            window,
            kinds: HashMap::new(),
        }
    }

    /// True if an alert of `kind` may be sent at `now` (and records it as sent).
    pub fn admit(&mut self, kind: AlertKind, now: Instant) -> bool {
        let w = self.kinds.entry(kind).or_default();
        match w.last_sent {
            Some(t) if now.duration_since(t) < self.window => {
                w.held_back += 1;
                false
            }
            _ => {
                w.last_sent = Some(now);
                true
            }
        }
    }

    /// Kinds whose window has ended with alerts held back: `(kind, count)`, each reported once
    /// (the report itself opens a new window).
    pub fn due_summaries(&mut self, now: Instant) -> Vec<(AlertKind, u32)> {
        let mut out = Vec::new();
        for (kind, w) in &mut self.kinds {
            if w.held_back > 0
                && w.last_sent
                    .is_none_or(|t| now.duration_since(t) >= self.window)
            {
                out.push((*kind, w.held_back));
                w.held_back = 0;
                w.last_sent = Some(now);
            }
        }
        out
    }
}

async fn sender_loop(
    bot: teloxide::Bot,
    chat: Recipient,
    window: Duration,
    mut rx: mpsc::Receiver<(AlertKind, String)>,
) {
    let mut throttle = Throttle::new(window);
    let mut tick =
        tokio::time::interval(window.clamp(Duration::from_secs(1), Duration::from_secs(60)));
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some((kind, text)) = msg else { return };
                if !kind.is_throttled() || throttle.admit(kind, Instant::now()) {
                    deliver(&bot, &chat, kind, &text).await;
                } else {
                    tracing::info!(kind = kind.name(), "telegram: alert throttled");
                }
            }
            _ = tick.tick() => {
                for (kind, n) in throttle.due_summaries(Instant::now()) {
                    let text = format!(
                        "Magic Master: {n} more {} alert(s) were held back in the last {} s; see the logs.",
                        kind.name(),
                        window.as_secs()
                    );
                    deliver(&bot, &chat, kind, &text).await;
                }
            }
        }
    }
}

async fn deliver(bot: &teloxide::Bot, chat: &Recipient, kind: AlertKind, text: &str) {
    match bot.send_message(chat.clone(), text.to_owned()).await {
        Ok(_) => tracing::info!(kind = kind.name(), "telegram: alert sent"),
        Err(e) => tracing::error!(kind = kind.name(), error = %e, "telegram: sending failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_admits_one_per_kind_and_window_then_summarises() {
        let mut t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(t.admit(AlertKind::JobFailed, t0));
        assert!(!t.admit(AlertKind::JobFailed, t0 + Duration::from_secs(1)));
        assert!(!t.admit(AlertKind::JobFailed, t0 + Duration::from_secs(2)));
        // Another kind has its own window.
        assert!(t.admit(AlertKind::HealthDegraded, t0 + Duration::from_secs(2)));
        assert!(t.due_summaries(t0 + Duration::from_secs(30)).is_empty());
        assert_eq!(
            t.due_summaries(t0 + Duration::from_secs(61)),
            vec![(AlertKind::JobFailed, 2)]
        );
        assert!(t.due_summaries(t0 + Duration::from_secs(62)).is_empty());
        assert!(t.admit(AlertKind::JobFailed, t0 + Duration::from_secs(122)));
    }
}
