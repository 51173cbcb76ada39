//! Timestamps as stored in the database and sent by the API: RFC 3339, UTC, millisecond
//! precision (`2026-12-07T20:00:00.000Z`), so that text order is time order. Code holds them
//! as `DateTime<Utc>`: rows are read with [`column`] / [`optional_column`], written with
//! [`format`], and response fields serialised with [`serialize`] / [`serialize_option`].

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_sqlite::rusqlite;

/// Formats a time the way the database stores it.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, formatted for the database.
pub fn now_rfc3339() -> String {
    format(Utc::now())
}

/// Reads a stored timestamp (any RFC 3339 text) as a time.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc())
}

/// Column `idx` of `row`, a stored timestamp; malformed text is an error, not a guess.
pub fn column(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(idx)?;
    parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Column `idx` of `row`, a timestamp or NULL.
pub fn optional_column(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => column(row, idx).map(Some),
    }
}

/// Serialises a time as the API sends it: the stored text ([`format`]).
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// [`serialize`] for an optional time (`null` when absent).
pub fn serialize_option<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text stored and sent is unchanged by holding times as `DateTime<Utc>`.
    #[test]
    fn times_are_written_and_sent_as_millisecond_utc_text_and_read_back() {
        let t = parse("2026-12-07T23:10:05.25+03:00").unwrap();
        assert_eq!(format(t), "2026-12-07T20:10:05.250Z");
        assert_eq!(parse(&format(t)).unwrap(), t);
        #[derive(serde::Serialize)]
        struct Body {
            #[serde(serialize_with = "serialize")]
            at: DateTime<Utc>,
            #[serde(serialize_with = "serialize_option")]
            maybe: Option<DateTime<Utc>>,
        }
        let body = serde_json::to_string(&Body { at: t, maybe: None }).unwrap();
        assert_eq!(body, r#"{"at":"2026-12-07T20:10:05.250Z","maybe":null}"#);
        assert!(parse("2026-12-07 20:10:05").is_err());
    }
}
