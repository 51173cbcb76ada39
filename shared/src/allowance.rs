//! The quota policy: what a caller may master today. A user's allowance is the daily limit
//! of their effective tier plus their bought tokens; a guest's is the configured guest limit,
//! counted by client key (IPv4 address or IPv6 /64). The reservation itself is made with the
//! job row ([`crate::jobs::create_owned`]); this module answers before the upload is read.

use crate::accounts::User;
use crate::db::{DbError, with_conn};
use crate::quota::{self, Exhausted, Subject};
use chrono::{DateTime, Utc};
use deadpool_sqlite::Pool;

/// A caller's quota: whose it is, the daily limit, the tier's name and the bought tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Whose usage counts.
    pub subject: Subject,
    /// The tier's name (`free`, `pro`, `studio`) or `guest`.
    pub tier: &'static str,
    /// Masters included per UTC day.
    pub daily_limit: u32,
    /// Bought masters left (0 for guests).
    pub tokens: i64,
}

impl Allowance {
    /// A registered user's: the effective tier's limit and their tokens.
    pub fn of_user(user: &User) -> Allowance {
        let tier = user.effective_tier();
        Allowance {
            subject: Subject::User(user.id),
            tier: tier.as_str(),
            daily_limit: tier.daily_limit(),
            tokens: user.tokens,
        }
    }

    /// A guest's, counted by `client_key`, with the configured `daily_limit`.
    pub fn of_guest(client_key: String, daily_limit: u32) -> Allowance {
        Allowance {
            subject: Subject::Guest(client_key),
            tier: "guest",
            daily_limit,
            tokens: 0,
        }
    }

    /// Masters of this allowance used on `now`'s UTC day.
    pub async fn used_today(&self, pool: &Pool, now: DateTime<Utc>) -> Result<u32, DbError> {
        let (subject, day) = (self.subject.clone(), quota::day(now));
        with_conn(pool, move |c| quota::used_on(c, &subject, &day)).await
    }

    /// `Some` when `used` masters leave nothing today (no daily master and no token): the
    /// answer to give before an upload is read.
    pub fn exhausted(&self, used: u32, now: DateTime<Utc>) -> Option<Exhausted> {
        (used >= self.daily_limit && self.tokens <= 0).then(|| Exhausted {
            daily_limit: self.daily_limit,
            reset_at: quota::reset_at(now),
        })
    }
}
