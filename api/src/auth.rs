//! Who is calling: the user behind a Bearer token (re-read from the database on every
//! request, so blocking or demoting takes effect at once), the guest token, the client IP.
//! Passwords are argon2id hashes.

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
pub use crate::guest_token::{GUEST_COOKIE, GUEST_COOKIE_MAX_AGE, GUEST_HEADER};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use shared::accounts::{MIN_PASSWORD_LEN, User};
use std::net::{IpAddr, SocketAddr};

/// The caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The logged-in user (checked against the database), if any.
    pub user: Option<User>,
    /// The guest token presented (cookie or header), if well-formed.
    pub guest_token: Option<String>,
    /// The client's address.
    pub ip: IpAddr,
}

impl Caller {
    /// SHA-256 (hex) of the guest token, as stored on guest jobs.
    pub fn guest_key(&self) -> Option<String> {
        self.guest_token.as_deref().map(guest_key)
    }

    /// What per-client limits and quotas count this caller as (see
    /// [`crate::security::client_key`]).
    pub fn client_key(&self) -> crate::security::ClientKey {
        crate::security::client_key(self.ip)
    }

    /// Whether this caller may see a job of `user_id` / `guest_key`.
    pub fn owns(&self, job: &shared::jobs::JobRow) -> bool {
        if let (Some(user), Some(owner)) = (&self.user, job.user_id)
            && user.id == owner
        {
            return true;
        }
        match (self.guest_key(), &job.guest_key) {
            (Some(mine), Some(theirs)) => constant_time_eq(mine.as_bytes(), theirs.as_bytes()),
            _ => false,
        }
    }
}

/// SHA-256 (hex) of a guest token.
pub fn guest_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new guest token: 256 random bits, URL-safe.
pub fn new_guest_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A guest token must be 32–128 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_guest_token(token: &str) -> bool {
    (32..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Set-Cookie` value for a guest token.
pub fn guest_cookie(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{GUEST_COOKIE}={token}; Path=/; Max-Age={GUEST_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn guest_token_from(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(GUEST_HEADER).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if is_valid_guest_token(v) {
            return Some(v.to_owned());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == GUEST_COOKIE && is_valid_guest_token(v))
        .map(|(_, v)| v.to_owned())
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::new(
            ErrorCode::InvalidToken,
            "send the access token as 'Authorization: Bearer <token>'",
        )),
    }
}

/// Resolves the caller: an invalid or expired token is a 401 (never silently a guest);
/// a deleted user is a 401; a blocked user is a 403.
pub async fn resolve(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = crate::security::client_ip(peer, &parts.headers, &state.security.trusted_proxies);
    let user = match bearer(&parts.headers)? {
        None => None,
        Some(token) => {
            let id = state.security.verify_token(token)?;
            let user = shared::accounts::by_id(&state.db, id)
                .await?
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidToken, "this account no longer exists")
                })?;
            if user.is_blocked {
                return Err(ApiError::new(
                    ErrorCode::UserBlocked,
                    "this account is blocked: contact support",
                ));
            }
            Some(user)
        }
    };
    Ok(Caller {
        user,
        guest_token: guest_token_from(&parts.headers),
        ip,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        resolve(state, parts).await
    }
}

/// A logged-in, unblocked user (401 without a token).
#[derive(Debug, Clone)]
pub struct AuthUser(pub User, pub Caller);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = resolve(state, parts).await?;
        match caller.user.clone() {
            Some(user) => Ok(AuthUser(user, caller)),
            None => Err(ApiError::new(
                ErrorCode::NotAuthenticated,
                "log in to use this",
            )),
        }
    }
}

/// A logged-in admin: 401 without a token, 403 when the database says not an admin.
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user, _) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::new(
                ErrorCode::AdminOnly,
                "this needs an administrator account",
            ));
        }
        Ok(AdminUser(user))
    }
}

/// Hashes a password with argon2id (default parameters, random salt), off the executor.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks a password against a stored hash, off the executor. A malformed hash counts as
/// a mismatch.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(ApiError::internal)
}

/// Creates or promotes the first admin from `MAGIC_MASTER_ADMIN_EMAIL`/`_PASSWORD`.
///
/// A new address gets an admin account with the configured password. An existing account
/// (registered by anyone before the variable was set) is promoted only when the configured
/// password is its own; otherwise start-up stops with what happened and what to do, so that
/// registering the address first never makes a stranger admin.
pub async fn bootstrap_admin(
    settings: &shared::Settings,
    db: &deadpool_sqlite::Pool,
) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) else {
        if settings.admin_email.is_some() {
            tracing::warn!(
                "MAGIC_MASTER_ADMIN_EMAIL is set without MAGIC_MASTER_ADMIN_PASSWORD: no admin created"
            );
        }
        return Ok(());
    };
    let email =
        normalize_email(email).map_err(|e| anyhow::anyhow!("MAGIC_MASTER_ADMIN_EMAIL: {e}"))?;
    if let Some(why) = weak_admin_password(password.expose()) {
        anyhow::bail!(
            "MAGIC_MASTER_ADMIN_PASSWORD {why}: choose the admin's real password (at least \
             {MIN_PASSWORD_LEN} characters)"
        );
    }
    let password = password.expose().to_owned();
    let refused = |detail: &str| {
        anyhow::anyhow!(
            "MAGIC_MASTER_ADMIN_EMAIL: an account {email} already exists {detail}, and its \
             password is not MAGIC_MASTER_ADMIN_PASSWORD, so it was not made admin (someone \
             may have registered the address first). If the account is yours, set \
             MAGIC_MASTER_ADMIN_PASSWORD to its password; otherwise set \
             MAGIC_MASTER_ADMIN_EMAIL to another address, and block or delete that account"
        )
    };
    // Two rounds at most: the account may appear between the lookup and the insert.
    for _ in 0..2 {
        match shared::accounts::by_email(db, &email).await? {
            Some(user) => {
                let matches = verify_password(password.clone(), user.password_hash.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("checking the admin password: {e}"))?;
                if !matches {
                    return Err(refused(if user.is_admin {
                        "as an admin"
                    } else {
                        "as a regular user"
                    }));
                }
                if user.is_admin {
                    tracing::info!(email = %user.email, "admin account ready");
                    return Ok(());
                }
                match shared::accounts::promote_verified(db, user.id, &user.password_hash).await? {
                    Some(admin) => {
                        tracing::warn!(
                            email = %admin.email,
                            "existing account promoted to admin (its password is \
                             MAGIC_MASTER_ADMIN_PASSWORD)"
                        );
                        return Ok(());
                    }
                    None => continue,
                }
            }
            None => {
                let hash = hash_password(password.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("hashing the admin password: {e}"))?;
                if let Some(admin) = shared::accounts::create(db, &email, &hash, true).await? {
                    tracing::info!(email = %admin.email, "admin account created");
                    return Ok(());
                }
            }
        }
    }
    anyhow::bail!("MAGIC_MASTER_ADMIN_EMAIL: the account {email} kept changing during start-up")
}

/// Admin passwords a deployment must not keep: the examples' placeholders and the like
/// (compared in lower case, letters and digits only).
const PLACEHOLDER_PASSWORDS: &[&str] = &[
    "changeme",
    "changethis",
    "replaceme",
    "placeholder",
    "password",
    "admin",
    "administrator",
    "adminadmin",
    "12345678",
    "123456789",
    "qwertyui",
];

/// Why `password` must not be the admin's, or `None`: shorter than [`MIN_PASSWORD_LEN`]
/// (the registration rule) or a placeholder. Never quotes the password.
pub fn weak_admin_password(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Some(format!(
            "is {chars} characters long, under the {MIN_PASSWORD_LEN} required"
        ));
    }
    let folded: String = password
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let placeholder = PLACEHOLDER_PASSWORDS.contains(&folded.as_str())
        || ["changeme", "replaceme", "placeholder"]
            .iter()
            .any(|w| folded.contains(w));
    placeholder.then(|| "looks like a placeholder".to_owned())
}

/// Lower-cases and checks an email address (one `@`, a dotted domain, no spaces).
pub fn normalize_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(email)
    } else {
        Err("enter a valid email address, like name@example.com".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_guest_tokens_are_checked() {
        assert_eq!(normalize_email(" A@B.co ").unwrap(), "a@b.co");
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b@c.de"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(is_valid_guest_token(&new_guest_token()));
        assert!(!is_valid_guest_token("short"));
        assert!(!is_valid_guest_token(&"x;".repeat(20)));
        let mut headers = HeaderMap::new();
        let token = new_guest_token();
        headers.insert(
            header::COOKIE,
            format!("a=b; {GUEST_COOKIE}={token}").parse().unwrap(),
        );
        assert_eq!(guest_token_from(&headers), Some(token));
    }

    #[test]
    fn placeholder_admin_passwords_are_refused() {
        for weak in [
            "CHANGE_ME",
            "change-me-please",
            "password",
            "Admin",
            "short",
            "12345678",
        ] {
            assert!(weak_admin_password(weak).is_some(), "{weak}");
        }
        for fine in [
            "admin password 1",
            "long enough pw",
            "check-admin-password-4242",
        ] {
            assert_eq!(weak_admin_password(fine), None, "{fine}");
        }
    }

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify_password("correct horse".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), hash).await.unwrap());
        assert!(
            !verify_password("x".into(), "not a hash".into())
                .await
                .unwrap()
        );
    }
}
