//! The payment provider's (YooKassa's) payment object, as read from its API: what
//! [`super::reconcile`] acts on. The HTTP client that fetches it is the API's
//! (`api/src/yookassa.rs`).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
