//! The payment provider (YooKassa) as the domain sees it: the payment object read from its
//! API (what [`super::reconcile`] acts on), the creation request, what can go wrong, and the
//! one call the domain makes itself ([`PaymentProvider::create_payment`], from
//! [`super::checkout`]). The HTTP client that implements it is the API's
//! (`api/src/yookassa.rs`), so this crate holds no provider client and the rules are tested
//! with a fake.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Creates payments at the provider: the call [`super::checkout`] makes.
pub trait PaymentProvider: Sync {
    /// Creates `request` at the provider; `idempotence_key` (our payment id) makes a retried
    /// creation return the same payment instead of a second one.
    fn create_payment(
        &self,
        request: &CreatePayment,
        idempotence_key: &str,
    ) -> impl Future<Output = Result<RemotePayment, YooKassaError>> + Send;
}

/// What went wrong talking to YooKassa.
#[derive(Debug, thiserror::Error)]
pub enum YooKassaError {
    /// No answer (connection refused, timeout, DNS).
    #[error("YooKassa is unreachable: {0}")]
    Unreachable(String),
    /// YooKassa knows no such payment (404).
    #[error("YooKassa has no such payment")]
    NotFound,
    /// YooKassa answered a server error (5xx): try again later.
    #[error("YooKassa answered {status}: {detail}")]
    ServerError { status: u16, detail: String },
    /// YooKassa refused the request (4xx other than 404): our request or credentials.
    #[error("YooKassa refused the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// The answer was not the JSON we expected.
    #[error("unexpected answer from YooKassa: {0}")]
    Invalid(String),
}

impl YooKassaError {
    /// True when trying again later may work (no answer, or a server error); false when
    /// YooKassa refused or answered nonsense.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            YooKassaError::Unreachable(_) | YooKassaError::ServerError { .. }
        )
    }
}

/// The body of `POST /payments`.
#[derive(Debug, Clone, Serialize)]
pub struct CreatePayment {
    /// Price.
    pub amount: Amount,
    /// Always true: one-step payments.
    pub capture: bool,
    /// A redirect confirmation with our return URL.
    pub confirmation: Confirmation,
    /// Shown to the payer (at most 128 characters).
    pub description: String,
    /// `payment_id`, `user_id`, `plan`.
    pub metadata: HashMap<String, String>,
}

/// An amount as YooKassa writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// Decimal text, e.g. `"490.00"`.
    pub value: String,
    /// ISO 4217 code.
    pub currency: String,
}

/// The `confirmation` object of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// `redirect` for us.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the payer confirms (responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    /// Where the payer comes back (requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// A payment's status at YooKassa (`pending`, `waiting_for_capture`, `succeeded`,
/// `canceled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteStatus {
    /// Created, the payer has not paid yet.
    Pending,
    /// Paid, waiting for the shop to capture it (we ask for automatic capture).
    WaitingForCapture,
    /// Paid and captured.
    Succeeded,
    /// Canceled or expired: no money taken.
    Canceled,
    /// A status YooKassa may add later: treated as still open.
    #[serde(other)]
    Unknown,
}

/// A payment object as YooKassa returns it (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct RemotePayment {
    /// YooKassa's id.
    pub id: String,
    /// Where the payment stands at YooKassa.
    pub status: RemoteStatus,
    /// Whether the money was received.
    #[serde(default)]
    pub paid: bool,
    /// What was charged.
    pub amount: Amount,
    /// How the payer confirms.
    #[serde(default)]
    pub confirmation: Option<Confirmation>,
    /// Our metadata, echoed.
    #[serde(default)]
    pub metadata: HashMap<String, serde_json::Value>,
    /// Set once any refund succeeded.
    #[serde(default)]
    pub refunded_amount: Option<Amount>,
    /// Test shop.
    #[serde(default)]
    pub test: bool,
}

impl RemotePayment {
    /// A metadata value as text.
    pub fn meta(&self, key: &str) -> Option<String> {
        match self.metadata.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}
