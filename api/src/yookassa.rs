//! Payments configuration and a small YooKassa API v3 client.
//!
//! [`Payments::from_settings`] decides the mode at start-up: both
//! `MAGIC_MASTER_YOOKASSA_SHOP_ID` and `…_SECRET_KEY` set → live (requests go to
//! `{MAGIC_MASTER_YOOKASSA_API_URL}/payments`), neither → demo (payments are credited at
//! once, no money moves), only one → a start-up error naming the missing one. It also loads
//! the plans and the webhook IP whitelist.

use crate::security::parse_networks;
use ipnet::IpNet;
use shared::Settings;
use shared::payments::Plans;
pub use shared::payments::checkout::return_url_for;
pub use shared::payments::provider::{
    Amount, Confirmation, CreatePayment, PaymentProvider, RemotePayment, RemoteStatus,
    YooKassaError,
};
use shared::settings::Secret;
use std::net::SocketAddr;
use std::time::Duration;

/// YooKassa's API when `MAGIC_MASTER_YOOKASSA_API_URL` is unset.
pub const DEFAULT_API_URL: &str = "https://api.yookassa.ru/v3";

/// The addresses YooKassa sends notifications from (its "webhooks" documentation), used when
/// `MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST` is unset.
pub const DEFAULT_WEBHOOK_WHITELIST: &[&str] = &[
    "185.71.76.0/27",
    "185.71.77.0/27",
    "77.75.153.0/25",
    "77.75.156.11",
    "77.75.156.35",
    "77.75.154.128/25",
    "2a02:5180::/32",
];

/// How long one call to YooKassa may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Live (through the [`YooKassa`] client) or demo.
pub type Mode = shared::payments::checkout::Mode<YooKassa>;

/// Everything the payment routes need, built once at start-up.
#[derive(Debug)]
pub struct Payments {
    /// The plans on sale.
    pub plans: Plans,
    /// Live or demo.
    pub mode: Mode,
    /// Where notifications may come from.
    pub webhook_whitelist: Vec<IpNet>,
    /// The return URL; `{payment_id}` is replaced by our id (else `payment_id=` is appended).
    pub return_url: String,
}

impl Payments {
    /// Reads the payment settings; errors name the variable at fault. `listen` is the API's
    /// address (for the default return URL).
    pub fn from_settings(settings: &Settings, listen: SocketAddr) -> anyhow::Result<Payments> {
        let plans = match &settings.payment_plans_file {
            Some(path) => Plans::from_file(path).map_err(|e| {
                anyhow::anyhow!("MAGIC_MASTER_PAYMENT_PLANS_FILE ({}): {e}", path.display())
            })?,
            None => Plans::builtin(),
        };
        let whitelist: Vec<String> = if settings.yookassa_webhook_ip_whitelist.is_empty() {
            DEFAULT_WEBHOOK_WHITELIST
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            settings.yookassa_webhook_ip_whitelist.clone()
        };
        let webhook_whitelist = parse_networks(&whitelist)
            .map_err(|e| anyhow::anyhow!("MAGIC_MASTER_YOOKASSA_WEBHOOK_IP_WHITELIST: {e}"))?;
        let mode = match (&settings.yookassa_shop_id, &settings.yookassa_secret_key) {
            (Some(shop_id), Some(secret)) => {
                let api_url = settings
                    .yookassa_api_url
                    .as_deref()
                    .unwrap_or(DEFAULT_API_URL)
                    .trim_end_matches('/')
                    .to_owned();
                if reqwest::Url::parse(&api_url).is_err() {
                    anyhow::bail!(
                        "MAGIC_MASTER_YOOKASSA_API_URL: expected a URL like {DEFAULT_API_URL}, got {api_url:?}"
                    );
                }
                Mode::Live(YooKassa::new(api_url, shop_id.clone(), secret.clone())?)
            }
            (None, None) => Mode::Demo,
            (Some(_), None) => anyhow::bail!(
                "MAGIC_MASTER_YOOKASSA_SECRET_KEY: not set, but MAGIC_MASTER_YOOKASSA_SHOP_ID is; \
                 set both for real payments or neither for demo mode"
            ),
            (None, Some(_)) => anyhow::bail!(
                "MAGIC_MASTER_YOOKASSA_SHOP_ID: not set, but MAGIC_MASTER_YOOKASSA_SECRET_KEY is; \
                 set both for real payments or neither for demo mode"
            ),
        };
        let return_url = settings
            .yookassa_return_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}/payment/return"));
        if !(return_url.starts_with("http://") || return_url.starts_with("https://")) {
            anyhow::bail!(
                "MAGIC_MASTER_YOOKASSA_RETURN_URL: expected an http(s) URL, got {return_url:?}"
            );
        }
        Ok(Payments {
            plans,
            mode,
            webhook_whitelist,
            return_url,
        })
    }

    /// True in demo mode.
    pub fn is_demo(&self) -> bool {
        matches!(self.mode, Mode::Demo)
    }

    /// The return URL for one payment.
    pub fn return_url_for(&self, payment_id: &str) -> String {
        return_url_for(&self.return_url, payment_id)
    }
}

/// The YooKassa API client (Basic auth with the shop id and secret key).
pub struct YooKassa {
    http: reqwest::Client,
    api_url: String,
    shop_id: String,
    secret: Secret,
}

impl std::fmt::Debug for YooKassa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YooKassa")
            .field("api_url", &self.api_url)
            .field("shop_id", &self.shop_id)
            .finish_non_exhaustive()
    }
}

/// A YooKassa id is safe to put in a URL path: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_provider_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl YooKassa {
    /// A client for `api_url` (without the trailing `/payments`).
    pub fn new(api_url: String, shop_id: String, secret: Secret) -> anyhow::Result<YooKassa> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(YooKassa {
            http,
            api_url,
            shop_id,
            secret,
        })
    }

    /// `GET {api}/payments/{id}`.
    pub async fn get_payment(&self, id: &str) -> Result<RemotePayment, YooKassaError> {
        if !is_valid_provider_id(id) {
            return Err(YooKassaError::NotFound);
        }
        let request = self
            .http
            .get(format!("{}/payments/{id}", self.api_url))
            .basic_auth(&self.shop_id, Some(self.secret.expose()));
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<RemotePayment, YooKassaError> {
        let response = request
            .send()
            .await
            .map_err(|e| YooKassaError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| YooKassaError::Unreachable(e.to_string()))?;
        match status {
            200..=299 => serde_json::from_str(&text)
                .map_err(|e| YooKassaError::Invalid(format!("{e}; body: {}", excerpt(&text)))),
            404 => Err(YooKassaError::NotFound),
            500..=599 => Err(YooKassaError::ServerError {
                status,
                detail: error_description(&text),
            }),
            _ => Err(YooKassaError::Rejected {
                status,
                detail: error_description(&text),
            }),
        }
    }
}

impl PaymentProvider for YooKassa {
    /// `POST {api}/payments` with `Idempotence-Key: idempotence_key`.
    async fn create_payment(
        &self,
        body: &CreatePayment,
        idempotence_key: &str,
    ) -> Result<RemotePayment, YooKassaError> {
        let request = self
            .http
            .post(format!("{}/payments", self.api_url))
            .basic_auth(&self.shop_id, Some(self.secret.expose()))
            .header("Idempotence-Key", idempotence_key)
            .json(body);
        self.send(request).await
    }
}

/// YooKassa's error body is `{"type":"error","code","description",…}`.
fn error_description(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            let code = v["code"].as_str().unwrap_or("");
            let description = v["description"].as_str()?;
            Some(format!("{code}: {description}"))
        })
        .unwrap_or_else(|| excerpt(text))
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yookassas_payment_statuses_are_read_and_new_ones_stay_open() {
        for (text, status) in [
            ("pending", RemoteStatus::Pending),
            ("waiting_for_capture", RemoteStatus::WaitingForCapture),
            ("succeeded", RemoteStatus::Succeeded),
            ("canceled", RemoteStatus::Canceled),
            ("on_hold_forever", RemoteStatus::Unknown),
        ] {
            let payment: RemotePayment = serde_json::from_value(serde_json::json!({
                "id": "2f00", "status": text, "amount": {"value": "490.00", "currency": "RUB"},
            }))
            .unwrap();
            assert_eq!(payment.status, status, "{text}");
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let vars = pairs
            .iter()
            .map(|(k, v)| (format!("MAGIC_MASTER_{k}"), (*v).to_owned()))
            .collect();
        Settings::from_vars(&vars).unwrap()
    }

    fn listen() -> SocketAddr {
        "127.0.0.1:8000".parse().unwrap()
    }

    #[test]
    fn mode_and_defaults_follow_the_settings() {
        let p = Payments::from_settings(&settings(&[]), listen()).unwrap();
        assert!(p.is_demo());
        assert_eq!(p.return_url, "http://127.0.0.1:8000/payment/return");
        assert_eq!(p.webhook_whitelist.len(), DEFAULT_WEBHOOK_WHITELIST.len());
        assert_eq!(p.plans, Plans::builtin());

        let live = Payments::from_settings(
            &settings(&[("YOOKASSA_SHOP_ID", "1"), ("YOOKASSA_SECRET_KEY", "k")]),
            listen(),
        )
        .unwrap();
        match &live.mode {
            Mode::Live(c) => assert_eq!(c.api_url, DEFAULT_API_URL),
            Mode::Demo => panic!("live expected"),
        }

        let err = Payments::from_settings(&settings(&[("YOOKASSA_SHOP_ID", "1")]), listen())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("MAGIC_MASTER_YOOKASSA_SECRET_KEY"), "{err}");
        let err = Payments::from_settings(&settings(&[("YOOKASSA_SECRET_KEY", "k")]), listen())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("MAGIC_MASTER_YOOKASSA_SHOP_ID"), "{err}");
        let err = Payments::from_settings(
            &settings(&[("YOOKASSA_WEBHOOK_IP_WHITELIST", "1.2.3.4,nope")]),
            listen(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("WEBHOOK_IP_WHITELIST"), "{err}");
    }

    #[test]
    fn an_invalid_plans_file_stops_start_up_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.json");
        std::fs::write(&path, "[{\"id\": \"x\"}]").unwrap();
        let err = Payments::from_settings(
            &settings(&[("PAYMENT_PLANS_FILE", path.to_str().unwrap())]),
            listen(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MAGIC_MASTER_PAYMENT_PLANS_FILE"), "{err}");
        assert!(err.contains("plans.json"), "{err}");
        std::fs::write(
            &path,
            r#"[{"id":"t5","name":"5 tokens","price":"99","currency":"RUB","tokens":5}]"#,
        )
        .unwrap();
        let p = Payments::from_settings(
            &settings(&[("PAYMENT_PLANS_FILE", path.to_str().unwrap())]),
            listen(),
        )
        .unwrap();
        assert_eq!(p.plans.all().len(), 1);
        assert_eq!(p.plans.get("t5").unwrap().price, "99.00");
    }

    #[test]
    fn provider_ids_are_checked_before_they_reach_a_url() {
        assert!(is_valid_provider_id("2d8d3c9f-000f-5000-9000-1b2c3d4e5f60"));
        assert!(!is_valid_provider_id("../../users"));
        assert!(!is_valid_provider_id(""));
        assert!(!is_valid_provider_id("a?b"));
    }
}
