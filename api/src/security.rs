//! Request-level security state: the JWT keys, the client's IP address (trusting
//! `X-Forwarded-For` only from configured proxies) and per-IP rate limiters.

use crate::error::{ApiError, ErrorCode};
use axum::http::HeaderMap;
use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::Settings;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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

/// What a client is counted as by every per-client limit and quota (the rate limiters, the
/// guest daily allowance, upload caps): an IPv4 address as such, an IPv6 address by its /64
/// network — one subscriber line or host gets a whole /64 and may rotate inside it at will.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as the IPv4 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ClientKey(IpAddr);

impl std::fmt::Display for ClientKey {
    /// `203.0.113.7` or `2001:db8:1:2::/64` (the form stored on guest quota rows).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The [`ClientKey`] of the client at `ip` (see there): the one function every per-client
/// limit and quota keys by.
pub fn client_key(ip: IpAddr) -> ClientKey {
    match canonical(ip) {
        IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !u128::from(u64::MAX);
            ClientKey(IpAddr::V6(Ipv6Addr::from(network)))
        }
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
            Some(s) => {
                if let Some(why) = weak_secret(s.expose()) {
                    anyhow::bail!(
                        "MAGIC_MASTER_JWT_SECRET {why}: anyone could forge tokens with it. Set it \
                         to at least 32 random bytes, e.g. the output of `openssl rand -hex 32`, \
                         or remove the variable to have a random one generated into \
                         <DATA_DIR>/{JWT_SECRET_FILE}"
                    );
                }
                s.expose().as_bytes().to_vec()
            }
            None => stored_secret(&settings.data_dir)?,
        };
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
                ApiError::Refused {
                    code: if expired {
                        ErrorCode::TokenExpired
                    } else {
                        ErrorCode::InvalidToken
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
            .map_err(|_| ApiError::Refused {
                code: ErrorCode::InvalidToken,
                detail: "the access token is not valid: log in again".to_owned(),
            })
    }
}

/// Shortest accepted JWT secret, in bytes (HS256 wants a key as long as its 256-bit hash).
pub const MIN_SECRET_BYTES: usize = 32;

/// Words that mark a value someone typed in place of a secret (compared in lower case, with
/// everything but letters and digits removed): the examples' `CHANGE_ME`, "your secret
/// here", "secret key", the project's own name… Each word has a letter beyond `f`, so no hex
/// value contains one; a random base64 value does about once in ten million.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "changethis",
    "replaceme",
    "placeholder",
    "secret",
    "password",
    "passphrase",
    "example",
    "default",
    "insecure",
    "qwerty",
    "magicmaster",
];

/// Why `secret` must not sign tokens, or `None` when it may: empty, shorter than
/// [`MIN_SECRET_BYTES`], a placeholder word, few distinct characters (`xxxx…`), a repeated
/// pattern (`abcabc…`) or mostly a run of consecutive characters (`0123…`, `abcd…`). Never
/// quotes the secret itself.
pub fn weak_secret(secret: &str) -> Option<String> {
    let bytes = secret.as_bytes();
    if bytes.is_empty() {
        return Some("is set but empty".to_owned());
    }
    if bytes.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "is {} bytes long, under the {MIN_SECRET_BYTES} bytes required",
            bytes.len()
        ));
    }
    let folded: String = secret
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| folded.contains(*w)) {
        return Some(format!("looks like a placeholder (it contains {word:?})"));
    }
    let distinct = bytes
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if distinct < 8 {
        return Some(format!("is made of only {distinct} different characters"));
    }
    if (1..=bytes.len() / 2).any(|p| bytes[p..].iter().zip(bytes).all(|(a, b)| a == b)) {
        return Some("is a repeated pattern".to_owned());
    }
    let steps = bytes
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1) || w[0] == w[1].wrapping_add(1))
        .count();
    if steps * 2 >= bytes.len() - 1 {
        return Some("is mostly runs of consecutive characters (like 0123 or abcd)".to_owned());
    }
    None
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

/// Clients one [`RateLimiter`] keeps track of at most. A flood of more distinct clients
/// within one window evicts the oldest windows first (those clients start a new window: a
/// client with that many addresses is not held back by a per-client limit anyway), so the
/// limiter's memory stays bounded (a few MB at this size) whatever the traffic.
pub const MAX_TRACKED_CLIENTS: usize = 50_000;

/// A fixed-window request counter per client ([`client_key`]: an IPv4 address or an IPv6
/// /64), with a bounded memory: entries leave when their window ends (checked from the
/// oldest, so each request does O(1) amortised work, never a sweep of the whole table) and
/// at most `capacity` are kept.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    capacity: usize,
    state: Mutex<Windows>,
}

/// Open windows: when each client's window opened and its count, and the clients in the
/// order their windows opened (exactly one queue item per tracked client, so expiry and
/// eviction pop from the front).
#[derive(Default)]
struct Windows {
    counts: HashMap<ClientKey, (Instant, u32)>,
    opened: VecDeque<(Instant, ClientKey)>,
}

impl RateLimiter {
    /// At most `limit` requests per `window` and client, tracking at most
    /// [`MAX_TRACKED_CLIENTS`] clients.
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter::with_capacity(limit, window, MAX_TRACKED_CLIENTS)
    }

    /// At most `limit` requests per `window` and client, tracking at most `capacity`
    /// clients (at least one).
    pub fn with_capacity(limit: u32, window: Duration, capacity: usize) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            capacity: capacity.max(1),
            state: Mutex::new(Windows::default()),
        }
    }

    /// Clients currently tracked (open windows).
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .len()
    }

    /// True when no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a request of the client at `ip` (keyed by [`client_key`]); `Err(seconds to
    /// wait)` when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let key = client_key(ip);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Windows { counts, opened } = &mut *state;
        let now = Instant::now();
        // Windows open in time order: the ended ones are at the front.
        while let Some(&(start, old)) = opened.front() {
            if now.duration_since(start) < self.window {
                break;
            }
            opened.pop_front();
            counts.remove(&old);
        }
        if !counts.contains_key(&key) {
            if counts.len() >= self.capacity
                && let Some((_, oldest)) = opened.pop_front()
            {
                counts.remove(&oldest);
            }
            opened.push_back((now, key));
        }
        let (start, count) = counts.entry(key).or_insert((now, 0));
        if *count >= self.limit {
            let wait = self.window.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
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
    ApiError::RetryLater {
        code: ErrorCode::RateLimited,
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

    #[test]
    fn limiter_memory_is_bounded_under_100_000_clients() {
        let l = RateLimiter::new(1_000, Duration::from_secs(60));
        // 150,000 clients, each in its own /64, all within one window. Without a sweep of the
        // whole table per request this takes milliseconds (a limiter that swept took 60 s).
        let started = Instant::now();
        for i in 0..150_000u32 {
            let ip = IpAddr::from([0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1]);
            assert!(l.check(ip).is_ok());
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{took:?} for 150,000 clients"
        );
        assert!(l.len() <= 100_000, "{} clients tracked", l.len());
        assert_eq!(l.len(), MAX_TRACKED_CLIENTS);
        // Once full, the oldest windows go first: the newest client keeps its count.
        let newest = IpAddr::from([0x2001, 0xdb8, 2, 0x49ef, 0, 0, 0, 1]);
        for _ in 1..1_000 {
            assert!(l.check(newest).is_ok());
        }
        assert!(
            l.check(newest).is_err(),
            "the newest client is still counted"
        );
    }

    #[test]
    fn limiter_entries_expire_with_their_window() {
        let l = RateLimiter::with_capacity(1, Duration::from_millis(40), 1_000);
        for i in 0..100u8 {
            assert!(l.check(IpAddr::from([10, 0, 0, i])).is_ok());
        }
        assert!(l.check(IpAddr::from([10, 0, 0, 1])).is_err());
        assert_eq!(l.len(), 100);
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            l.check(IpAddr::from([10, 0, 0, 1])).is_ok(),
            "a new window after the old one ended"
        );
        assert_eq!(l.len(), 1, "ended windows are dropped");
        let small = RateLimiter::with_capacity(5, Duration::from_secs(60), 1_000);
        for i in 0..100_000u32 {
            let _ = small.check(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(small.len(), 1_000, "never more than the capacity");
    }

    #[test]
    fn rotation_inside_a_64_is_one_client() {
        let l = RateLimiter::new(3, Duration::from_secs(60));
        let results: Vec<bool> = (1..=5u16)
            .map(|i| {
                let ip = IpAddr::from([0x2001, 0xdb8, 7, 7, i, i, i, i]);
                l.check(ip).is_ok()
            })
            .collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(l.check("2001:db8:7:8::1".parse().unwrap()).is_ok());
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn client_keys_are_ipv4_addresses_and_ipv6_64s() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("203.0.113.7"), key("::ffff:203.0.113.7"));
        assert_ne!(key("203.0.113.7"), key("203.0.113.8"));
        assert_eq!(key("::ffff:203.0.113.7").to_string(), "203.0.113.7");
        assert_ne!(key("::1"), key("127.0.0.1"));
    }

    #[test]
    fn weak_jwt_secrets_are_named_and_random_ones_pass() {
        for (weak, reason) in [
            ("", "empty"),
            ("CHANGE_ME", "bytes long"),
            ("0123456789abcdef", "bytes long"),
            ("CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME", "placeholder"),
            ("your-super-secret-jwt-key-for-production", "placeholder"),
            ("MagicMaster-production-key-2026-12-07!!", "placeholder"),
            ("correct-horse-battery-staple-password-1", "placeholder"),
            (&"x".repeat(64), "different characters"),
            (
                "abcdabcdabcdabcdabcdabcdabcdabcdabcd",
                "different characters",
            ),
            ("k3Vq9Zp2k3Vq9Zp2k3Vq9Zp2k3Vq9Zp2k3Vq", "repeated"),
            ("0123456789abcdefghijklmnopqrstuvwxyz", "consecutive"),
            ("zyxwvutsrqponmlkjihgfedcba9876543210", "consecutive"),
        ] {
            let why = weak_secret(weak).unwrap_or_else(|| panic!("{weak:?} accepted"));
            assert!(why.contains(reason), "{weak:?}: {why}");
            if weak.len() >= MIN_SECRET_BYTES {
                assert!(!why.contains(weak), "{why}");
            }
        }
        for _ in 0..1_000 {
            let bytes = rand::random::<[u8; 32]>();
            let hex = hex::encode(bytes);
            assert_eq!(weak_secret(&hex), None, "{hex}");
            assert_eq!(weak_secret(&hex[..32]), None, "{hex}");
        }
    }
}
