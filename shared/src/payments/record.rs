//! A payment row and its status.

use crate::payments::money::{amount_minor_units, format_amount};
use crate::payments::plans::Grant;
use chrono::{DateTime, Utc};

/// The life cycle of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Created, waiting for the payer.
    Pending,
    /// Paid, waiting for capture (we ask for automatic capture, so this is brief).
    WaitingForCapture,
    /// Paid and credited.
    Succeeded,
    /// Not paid (the payer gave up, or the bank refused). Nothing credited.
    Canceled,
    /// Paid, then refunded: what it gave was taken back.
    Refunded,
    /// Creating the payment at YooKassa failed. Nothing credited.
    Failed,
}

impl PaymentStatus {
    /// The name stored and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::WaitingForCapture => "waiting_for_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Failed => "failed",
        }
    }

    /// Parses a stored status (unknown text reads as `Failed`).
    pub fn parse(s: &str) -> PaymentStatus {
        match s {
            "pending" => PaymentStatus::Pending,
            "waiting_for_capture" => PaymentStatus::WaitingForCapture,
            "succeeded" => PaymentStatus::Succeeded,
            "canceled" => PaymentStatus::Canceled,
            "refunded" => PaymentStatus::Refunded,
            _ => PaymentStatus::Failed,
        }
    }

    /// True while YooKassa may still change it (pending or waiting for capture).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PaymentStatus::Pending | PaymentStatus::WaitingForCapture
        )
    }
}

/// One row of `payments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our id (random, unguessable), used in every route and as the idempotence key.
    pub id: String,
    /// The payer.
    pub user_id: i64,
    /// Plan id at creation.
    pub plan: String,
    /// Amount, two decimals.
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Current status.
    pub status: PaymentStatus,
    /// Demo mode (no real money): credited at creation.
    pub demo: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was credited; set at most once.
    pub credited_at: Option<DateTime<Utc>>,
    /// When it was refunded; set at most once.
    pub refunded_at: Option<DateTime<Utc>>,
    /// YooKassa's id (`None` in demo mode, or when creation failed).
    pub provider_payment_id: Option<String>,
    /// Where the payer confirms the payment.
    pub confirmation_url: Option<String>,
    /// What the plan granted at creation.
    pub grant: Option<Grant>,
    /// Why creation failed.
    pub error: Option<String>,
    /// Cumulative amount refunded so far and already taken back, in minor units (kopecks);
    /// 0 when nothing was refunded.
    pub refunded_kopecks: u64,
}

impl Payment {
    /// The amount in minor units (`None` only for a malformed stored amount).
    pub fn amount_kopecks(&self) -> Option<u64> {
        amount_minor_units(&self.amount)
    }

    /// The cumulative refunded amount as two-decimal text (`"0.00"` when none).
    pub fn refunded_amount(&self) -> String {
        format_amount(self.refunded_kopecks)
    }
}
