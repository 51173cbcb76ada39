//! The `users` table: accounts with their tier, bought tokens and the admin and blocked
//! flags. The API reads a user from here on every authenticated request, so a change made
//! in the database (demotion, blocking) takes effect at once.

use crate::db::{DbError, with_conn};
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};
use mastering::OutputFormat;
use serde::Serialize;

/// Shortest accepted password (at registration, and for the configured admin password).
pub const MIN_PASSWORD_LEN: usize = 8;

/// A subscription tier, ordered from free to studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Registered, not paying: WAV 16-bit, a small daily allowance.
    Free,
    /// Paid: every format and bit depth, a larger allowance.
    Pro,
    /// Paid, for heavy users: every format, the largest allowance.
    Studio,
}

impl Tier {
    /// Parses `free`, `pro` or `studio`.
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Some(Tier::Free),
            "pro" => Some(Tier::Pro),
            "studio" => Some(Tier::Studio),
            _ => None,
        }
    }

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Studio => "studio",
        }
    }

    /// Masters a day included in the tier (bought tokens come on top).
    pub fn daily_limit(self) -> u32 {
        match self {
            Tier::Free => 5,
            Tier::Pro => 50,
            Tier::Studio => 500,
        }
    }

    /// The output formats the tier may ask for ([`FormatRules`]).
    pub fn formats(self) -> FormatRules {
        match self {
            Tier::Free => FormatRules::FREE,
            Tier::Pro | Tier::Studio => FormatRules::PAID,
        }
    }
}

/// The output formats a caller may ask for: the one place the format rules of the tiers are
/// decided. The upload route refuses anything else (403 `format-not-allowed`) and
/// `GET /api/limits` lists them. A tier does not decide the sample rate: a master keeps its
/// input's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FormatRules {
    /// Output formats, by [`OutputFormat::name`].
    pub formats: &'static [&'static str],
    /// Bits per sample of WAV and FLAC (MP3 has none: every bit rate is allowed).
    pub bit_depths: &'static [u16],
}

impl FormatRules {
    /// Guests and free users: 16-bit WAV.
    pub const FREE: FormatRules = FormatRules {
        formats: &["wav"],
        bit_depths: &[16],
    };
    /// Pro and Studio: every format and bit depth.
    pub const PAID: FormatRules = FormatRules {
        formats: &["wav", "flac", "mp3"],
        bit_depths: &[16, 24],
    };

    /// The rules of a guest (`None`) or of a user of `tier`.
    pub fn of(tier: Option<Tier>) -> FormatRules {
        tier.map_or(FormatRules::FREE, Tier::formats)
    }

    /// Whether `format` is one of these.
    pub fn allows(&self, format: &OutputFormat) -> bool {
        let depth_allowed = match format {
            OutputFormat::Wav { bit_depth } | OutputFormat::Flac { bit_depth } => {
                self.bit_depths.contains(bit_depth)
            }
            OutputFormat::Mp3 { .. } => true,
        };
        self.formats.contains(&format.name()) && depth_allowed
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The tier as stored (see [`User::effective_tier`]).
    pub tier: Tier,
    /// When a paid tier ends; `None` = does not expire.
    pub tier_expires_at: Option<DateTime<Utc>>,
    /// Bought tokens: one master each, beyond the daily allowance.
    pub tokens: i64,
    pub is_admin: bool,
    pub is_blocked: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// The tier in force now: a paid tier whose expiry has passed counts as free.
    pub fn effective_tier(&self) -> Tier {
        match self.tier_expires_at {
            Some(end) if end <= Utc::now() => Tier::Free,
            _ => self.tier,
        }
    }
}

const COLUMNS: &str =
    "id, email, password_hash, tier, tier_expires_at, tokens, is_admin, is_blocked, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let tier: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
        tier: Tier::parse(&tier).unwrap_or(Tier::Free),
        tier_expires_at: crate::time::optional_column(row, 4)?,
        tokens: row.get(5)?,
        is_admin: row.get(6)?,
        is_blocked: row.get(7)?,
        created_at: crate::time::column(row, 8)?,
    })
}

/// Reads a user by id on an open connection.
pub fn get_in(c: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<User>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Creates an account; `None` when the email is taken (case-insensitively).
pub async fn create(
    pool: &Pool,
    email: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<Option<User>, DbError> {
    let (email, hash) = (email.to_owned(), password_hash.to_owned());
    with_conn(pool, move |c| {
        let inserted = c.execute(
            "INSERT INTO users (email, password_hash, is_admin, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (email) DO NOTHING",
            params![email, hash, is_admin, crate::time::now_rfc3339()],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        get_in(c, c.last_insert_rowid())
    })
    .await
}

/// Reads a user by email (case-insensitive).
pub async fn by_email(pool: &Pool, email: &str) -> Result<Option<User>, DbError> {
    let email = email.to_owned();
    with_conn(pool, move |c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE email = ?1"),
            [email],
            from_row,
        )
        .optional()
    })
    .await
}

/// Reads a user by id.
pub async fn by_id(pool: &Pool, id: i64) -> Result<Option<User>, DbError> {
    with_conn(pool, move |c| get_in(c, id)).await
}

/// Makes user `id` an admin, only while its password hash is still `verified_hash` (the
/// one its caller checked the configured admin password against). Returns the user, or
/// `None` when it no longer exists or its hash changed (nothing is updated then).
pub async fn promote_verified(
    pool: &Pool,
    id: i64,
    verified_hash: &str,
) -> Result<Option<User>, DbError> {
    let hash = verified_hash.to_owned();
    with_conn(pool, move |c| {
        let changed = c.execute(
            "UPDATE users SET is_admin = 1 WHERE id = ?1 AND password_hash = ?2",
            params![id, hash],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        get_in(c, id)
    })
    .await
}

/// Users whose email contains `query` (all when empty), newest first, and the total count.
pub async fn search(
    pool: &Pool,
    query: &str,
    limit: u32,
    offset: u32,
) -> Result<(Vec<User>, u64), DbError> {
    let pattern = format!(
        "%{}%",
        query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    with_conn(pool, move |c| {
        let total: i64 = c.query_row(
            "SELECT COUNT(*) FROM users WHERE email LIKE ?1 ESCAPE '\\'",
            [&pattern],
            |r| r.get(0),
        )?;
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM users WHERE email LIKE ?1 ESCAPE '\\' \
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let users = stmt
            .query_map(params![pattern, limit, offset], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((users, total.max(0) as u64))
    })
    .await
}

/// Changes the tier (with an optional expiry) and/or the blocked flag; `None` when the user
/// does not exist.
pub async fn update(
    pool: &Pool,
    id: i64,
    tier: Option<(Tier, Option<DateTime<Utc>>)>,
    blocked: Option<bool>,
) -> Result<Option<User>, DbError> {
    with_conn(pool, move |c| {
        let tx = c.transaction()?;
        if let Some((tier, expires)) = tier {
            tx.execute(
                "UPDATE users SET tier = ?2, tier_expires_at = ?3 WHERE id = ?1",
                params![id, tier.as_str(), expires.map(crate::time::format)],
            )?;
        }
        if let Some(blocked) = blocked {
            tx.execute(
                "UPDATE users SET is_blocked = ?2 WHERE id = ?1",
                params![id, blocked],
            )?;
        }
        let user = get_in(&tx, id)?;
        tx.commit()?;
        Ok(user)
    })
    .await
}

/// Adds `amount` tokens; `None` when the user does not exist.
pub async fn grant_tokens(pool: &Pool, id: i64, amount: i64) -> Result<Option<User>, DbError> {
    with_conn(pool, move |c| {
        c.execute(
            "UPDATE users SET tokens = tokens + ?2 WHERE id = ?1",
            params![id, amount],
        )?;
        get_in(c, id)
    })
    .await
}

/// Number of accounts.
pub async fn count(pool: &Pool) -> Result<u64, DbError> {
    with_conn(pool, |c| {
        c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
    })
    .await
    .map(|n| n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn emails_are_unique_case_insensitively_and_admins_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let a = create(&pool, "a@example.com", "h", false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.tier, Tier::Free);
        assert!(
            create(&pool, "A@Example.com", "h2", false)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            promote_verified(&pool, a.id, "other")
                .await
                .unwrap()
                .is_none(),
            "another hash than the stored one promotes nothing"
        );
        assert!(!by_id(&pool, a.id).await.unwrap().unwrap().is_admin);
        let admin = promote_verified(&pool, a.id, "h").await.unwrap().unwrap();
        assert!(admin.is_admin);
        assert_eq!(admin.password_hash, "h", "existing password kept");
        let u = update(&pool, a.id, Some((Tier::Pro, None)), Some(true))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((u.tier, u.is_blocked), (Tier::Pro, true));
        let u = grant_tokens(&pool, a.id, 3).await.unwrap().unwrap();
        assert_eq!(u.tokens, 3);
        let (found, total) = search(&pool, "EXAMPLE", 10, 0).await.unwrap();
        assert_eq!((found.len(), total), (1, 1));
        let (found, total) = search(&pool, "%", 10, 0).await.unwrap();
        assert_eq!((found.len(), total), (0, 0), "LIKE wildcards are escaped");
    }

    #[test]
    fn expired_paid_tier_counts_as_free() {
        let mut u = User {
            id: 1,
            email: "x@y.z".into(),
            password_hash: String::new(),
            tier: Tier::Pro,
            tier_expires_at: crate::time::parse("2000-01-01T00:00:00.000Z").ok(),
            tokens: 0,
            is_admin: false,
            is_blocked: false,
            created_at: Utc::now(),
        };
        assert_eq!(u.effective_tier(), Tier::Free);
        u.tier_expires_at = crate::time::parse("2999-01-01T00:00:00.000Z").ok();
        assert_eq!(u.effective_tier(), Tier::Pro);
    }

    /// A tier end stored with an offset (by an operator's `sqlite3`, say) is compared as a
    /// time, not as text: 05:00+03:00 is 02:00 UTC.
    #[tokio::test]
    async fn a_tier_end_is_compared_as_a_time_whatever_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_pool(&dir.path().join("t.db"), 2).unwrap();
        crate::db::migrate(&pool).await.unwrap();
        let user = create(&pool, "a@example.com", "h", false)
            .await
            .unwrap()
            .unwrap();
        let moscow = chrono::FixedOffset::east_opt(3 * 3600).unwrap();
        for (hours, tier) in [(-1, Tier::Free), (1, Tier::Pro)] {
            let end = chrono::Utc::now() + chrono::Duration::hours(hours);
            let text = end.with_timezone(&moscow).to_rfc3339();
            with_conn(&pool, move |c| {
                c.execute(
                    "UPDATE users SET tier = 'pro', tier_expires_at = ?2 WHERE id = ?1",
                    params![user.id, text],
                )
            })
            .await
            .unwrap();
            let stored = by_id(&pool, user.id).await.unwrap().unwrap();
            assert_eq!(stored.effective_tier(), tier, "{hours} h");
        }
    }

    /// Every format the mastering crate can write, with the tier rules' answer for it.
    fn every_format() -> Vec<OutputFormat> {
        let mut all = Vec::new();
        for name in ["wav", "flac"] {
            for depth in [16, 24] {
                all.push(OutputFormat::from_parts(name, Some(depth), None).unwrap());
            }
        }
        for kbps in [128, 192, 256, 320] {
            all.push(OutputFormat::from_parts("mp3", None, Some(kbps)).unwrap());
        }
        all
    }

    #[test]
    fn guests_and_free_users_get_16_bit_wav_and_paid_tiers_everything() {
        let free = OutputFormat::Wav { bit_depth: 16 };
        for format in every_format() {
            let paid = Tier::Pro.formats().allows(&format);
            assert!(paid, "{format:?}");
            assert_eq!(Tier::Studio.formats().allows(&format), paid);
            let for_free = Tier::Free.formats().allows(&format);
            assert_eq!(for_free, format == free, "{format:?}");
            assert_eq!(
                FormatRules::of(None).allows(&format),
                for_free,
                "guests as free"
            );
        }
    }

    #[test]
    fn the_listed_formats_and_depths_are_exactly_the_allowed_ones() {
        for rules in [FormatRules::FREE, FormatRules::PAID] {
            for format in every_format() {
                let listed = rules.formats.contains(&format.name())
                    && match format {
                        OutputFormat::Wav { bit_depth } | OutputFormat::Flac { bit_depth } => {
                            rules.bit_depths.contains(&bit_depth)
                        }
                        OutputFormat::Mp3 { .. } => true,
                    };
                assert_eq!(rules.allows(&format), listed, "{rules:?} {format:?}");
            }
        }
    }
}
