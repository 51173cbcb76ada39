//! Where a guest's token travels: the cookie the web app keeps and the header API clients
//! send. Named here, apart from [`crate::auth`] (which reads them) and [`crate::cors`]
//! (which allows the header), so neither imports the other.

/// Cookie carrying the guest token.
pub const GUEST_COOKIE: &str = "mm_guest";
/// Header carrying the guest token (for API clients without cookies).
pub const GUEST_HEADER: &str = "x-guest-token";
/// Lifetime of the guest cookie (30 days).
pub const GUEST_COOKIE_MAX_AGE: u64 = 30 * 86_400;
