//! Request-level security state: the JWT keys, the client's IP address (trusting
//! `X-Forwarded-For` only from configured proxies) and per-IP rate limiters.

use crate::error::ApiError;
use axum::http::HeaderMap;
use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::Settings;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the file in the data dir holding the generated JWT secret.
pub const JWT_SECRET_FILE: &str = "jwt_secret";

/// What the API needs to authenticate and throttle requests.
pub struct Security {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Limiter of the register/login routes.
    pub auth_limiter: RateLimiter,
    /// Limiter of `POST /api/v2/analyze` (`None`: off).
    pub analyze_limiter: Option<RateLimiter>,
    /// Limiter of every route but [`RATE_LIMIT_EXEMPT`] (`None`: off).
    pub global_limiter: Option<RateLimiter>,
    /// Origins allowed by CORS (empty: any).
    pub cors_origins: Vec<axum::http::HeaderValue>,
}

/// Paths the global rate limit never counts: health checks and metrics scrapes (monitoring
/// must keep working during a flood) and the payment webhook (YooKassa's retries must not
/// be refused; it has its own IP whitelist).
pub const RATE_LIMIT_EXEMPT: &[&str] = &["/api/health", "/metrics", "/api/payments/webhook"];

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token_ttl", &self.token_ttl)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// Parses a list of IP addresses and CIDR ranges (`10.0.0.1`, `185.71.76.0/27`, `::1`).
pub fn parse_networks(items: &[String]) -> Result<Vec<IpNet>, String> {
    items
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR range"))
        })
        .collect()
}

/// True when `ip` is inside one of `nets` (IPv4-mapped IPv6 addresses count as IPv4).
pub fn ip_in(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = canonical(peer.map(|p| p.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1])));
    if !ip_in(trusted, peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !ip_in(trusted, *ip))
        .unwrap_or(peer_ip)
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

impl Security {
    /// Builds the state from settings; the JWT secret comes from `MAGIC_MASTER_JWT_SECRET`
    /// or from the data dir (generated once, with a warning).
    pub fn new(settings: &Settings) -> anyhow::Result<Security> {
        let secret = match &settings.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => stored_secret(&settings.data_dir)?,
        };
        if secret.len() < 32 {
            tracing::warn!("MAGIC_MASTER_JWT_SECRET is shorter than 32 bytes: use a longer one");
        }
        let trusted_proxies = parse_networks(&settings.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("MAGIC_MASTER_TRUSTED_PROXIES: {e}"))?;
        Ok(Security {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            token_ttl: Duration::from_secs(settings.jwt_ttl_seconds),
            trusted_proxies,
            auth_limiter: RateLimiter::new(settings.auth_rate_limit, Duration::from_secs(60)),
            analyze_limiter: Some(settings.analyze_rate_limit)
                .filter(|n| *n > 0)
                .map(|n| RateLimiter::new(n, Duration::from_secs(60))),
            global_limiter: Some(settings.global_rate_limit())
                .filter(|n| *n > 0)
                .map(|n| RateLimiter::new(n, Duration::from_secs(60))),
            cors_origins: crate::cors::parse_origins(&settings.cors_origins)
                .map_err(|e| anyhow::anyhow!("MAGIC_MASTER_CORS_ORIGINS: {e}"))?,
        })
    }

    /// A signed HS256 access token for `user_id`.
    pub fn issue_token(&self, user_id: i64) -> Result<String, ApiError> {
        let now = shared::time::unix_now();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Checks signature (HS256 only: `alg: none` and every other algorithm are refused)
    /// and expiry; returns the user id.
    pub fn verify_token(&self, token: &str) -> Result<i64, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|e| {
                let expired = matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature);
                ApiError::Unauthorized {
                    code: if expired {
                        "token-expired"
                    } else {
                        "invalid-token"
                    },
                    detail: if expired {
                        "your session has expired: log in again".to_owned()
                    } else {
                        "the access token is not valid: log in again".to_owned()
                    },
                }
            })?;
        data.claims
            .sub
            .parse::<i64>()
            .map_err(|_| ApiError::Unauthorized {
                code: "invalid-token",
                detail: "the access token is not valid: log in again".to_owned(),
            })
    }
}

/// Reads the generated secret from the data dir, creating it (0600) the first time.
fn stored_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(JWT_SECRET_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 32 {
            tracing::warn!(
                path = %path.display(),
                "MAGIC_MASTER_JWT_SECRET is not set: using the secret generated in the data dir"
            );
            return Ok(text.as_bytes().to_vec());
        }
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    std::fs::create_dir_all(data_dir)?;
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        file.write_all(secret.as_bytes())?;
        file.sync_all()?;
    }
    tracing::warn!(
        path = %path.display(),
        "MAGIC_MASTER_JWT_SECRET is not set: generated a random secret and stored it in the data dir; \
         set the variable in production"
    );
    Ok(secret.into_bytes())
}

/// A fixed-window request counter per IP address.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    hits: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// At most `limit` requests per `window` and address.
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request; `Err(seconds to wait)` when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() > 100_000 {
            let window = self.window;
            hits.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = hits.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Middleware: the global per-IP rate limit (429 with `Retry-After` when over it).
pub async fn global_rate_limit(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(limiter) = &state.security.global_limiter
        && !RATE_LIMIT_EXEMPT.contains(&req.uri().path())
    {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = client_ip(peer, req.headers(), &state.security.trusted_proxies);
        if let Err(wait) = limiter.check(ip) {
            return rate_limited(wait).into_response();
        }
    }
    next.run(req).await
}

/// The 429 answer of a rate limiter.
pub fn rate_limited(retry_after: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "rate-limited",
        detail: format!("too many requests: try again in {retry_after} s"),
        retry_after,
        reset_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = parse_networks(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.1.1.1".parse().unwrap(),
        );
        let from_proxy: SocketAddr = "10.0.0.5:1234".parse().unwrap();
        let direct: SocketAddr = "8.8.8.8:1234".parse().unwrap();
        assert_eq!(
            client_ip(Some(from_proxy), &headers, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(Some(direct), &headers, &trusted),
            "8.8.8.8".parse::<IpAddr>().unwrap()
        );
        assert!(parse_networks(&["nope".into()]).is_err());
        assert!(ip_in(&trusted, "::ffff:10.2.3.4".parse().unwrap()));
    }

    #[test]
    fn limiter_refuses_over_the_limit_with_a_wait() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "1.1.1.1".parse().unwrap();
        assert!(l.check(ip).is_ok());
        assert!(l.check(ip).is_ok());
        let wait = l.check(ip).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(l.check("2.2.2.2".parse().unwrap()).is_ok());
    }
}
