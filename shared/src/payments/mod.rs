//! Payments: the plans on sale, the `payments` rows and the one exactly-once path that
//! credits what a payment bought (or takes it back after a refund).
//!
//! Every state change is a conditional `UPDATE` inside a `BEGIN IMMEDIATE` transaction; the
//! account is changed only when that update changed exactly one row, so duplicate or
//! concurrent notifications for one payment credit (and refund) at most once.
//!
//! Refunds may be partial and several: YooKassa reports the cumulative refunded amount, the
//! row keeps the cumulative amount already acted on (`refunded_kopecks`, which only grows),
//! and only the increase is taken back. What is taken back in total is the refunded share of
//! the grant rounded up ([`share_taken_back`]), so it never exceeds what was given.
//!
//! What a plan grants is copied into the payment row when it is created, so editing the
//! plans file later never changes what an old payment credits or takes back.
//!
//! The module is split by concern: [`plans`] (what is on sale and what it grants),
//! [`money`] (amounts in exact minor units), [`record`] (a payment row and its status),
//! [`store`] (reading and writing rows), [`ledger`] (the exactly-once credit, refund and
//! cancel transitions), [`provider`] (the provider's payment object, and the one call the
//! domain makes to it), [`checkout`] (starting a payment: demo or live, the plan-below-tier
//! rule, what is recorded around the provider's answer) and [`reconcile`] (acting on what the
//! provider reports). Everything is re-exported here, so
//! callers write `shared::payments::credit`.

pub mod checkout;
pub mod ledger;
pub mod money;
pub mod plans;
pub mod provider;
pub mod reconcile;
pub mod record;
pub mod store;

pub use ledger::*;
pub use money::*;
pub use plans::*;
pub use record::*;
pub use store::*;
