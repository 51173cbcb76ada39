//! Timestamps as stored in the database: RFC 3339, UTC, millisecond precision, so that
//! text order is time order.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a time the way the database stores it.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, formatted for the database.
pub fn now_rfc3339() -> String {
    format(Utc::now())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}
