//! CORS from `MAGIC_MASTER_CORS_ORIGINS`: listed origins get `Access-Control-Allow-Origin`
//! (others get no CORS headers, so browsers refuse them); an empty list allows any origin
//! (`*`, with a warning logged at start-up). Preflight requests are answered here, with
//! `Authorization`, `Content-Type` and `X-Guest-Token` allowed.

use axum::http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// How long browsers may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Checks the configured origins and brings each to the form browsers send in `Origin`
/// (see [`normalize_origin`]): `scheme://host[:port]`, no path or trailing slash.
pub fn parse_origins(origins: &[String]) -> Result<Vec<HeaderValue>, String> {
    origins
        .iter()
        .map(|o| {
            let ascii = normalize_origin(o)?;
            HeaderValue::from_str(&ascii).map_err(|_| format!("{o:?} is not a valid origin"))
        })
        .collect()
}

/// One configured origin in the exact form a browser sends it: scheme and host in lower
/// case, an internationalised host in its ASCII (punycode) form, the scheme's default port
/// dropped (`https://Ваш-Домен.com:443` → `https://xn----7sbfkf5bif1g.com`). A path, query,
/// fragment, user name or another scheme than http/https is refused.
pub fn normalize_origin(origin: &str) -> Result<String, String> {
    let malformed = || {
        format!(
            "{origin:?} is not an origin like https://master.example.com (scheme and host, \
             no path or trailing slash)"
        )
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(malformed)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        || rest.is_empty()
        || rest.contains(['/', '?', '#', '@', '\\'])
        || rest.contains(char::is_whitespace)
    {
        return Err(malformed());
    }
    let url =
        url::Url::parse(origin).map_err(|e| format!("{origin:?} is not a valid origin: {e}"))?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err(malformed()),
    }
}

/// The CORS layer for these origins (empty: any origin).
pub fn layer(origins: &[HeaderValue]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static(crate::guest_token::GUEST_HEADER),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    if origins.is_empty() {
        base.allow_origin(Any)
    } else {
        base.allow_origin(AllowOrigin::list(origins.iter().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_take_the_form_browsers_send() {
        for (configured, sent) in [
            // Punycode of "ваш-домен", as Python's `"ваш-домен.com".encode("idna")` gives it.
            ("https://ваш-домен.com", "https://xn----7sbfkf5bif1g.com"),
            ("https://ВАШ-ДОМЕН.com", "https://xn----7sbfkf5bif1g.com"),
            (
                "HTTPS://Master.Example.COM:443",
                "https://master.example.com",
            ),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("https://a.example.com:8443", "https://a.example.com:8443"),
            (
                "https://xn----7sbfkf5bif1g.com",
                "https://xn----7sbfkf5bif1g.com",
            ),
            ("http://[::1]:8000", "http://[::1]:8000"),
        ] {
            assert_eq!(
                normalize_origin(configured).as_deref(),
                Ok(sent),
                "{configured}"
            );
        }
        for bad in [
            "https://user@a.example.com",
            "https://a b.com",
            "https://a.example.com:99999",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_must_be_exact() {
        let ok = parse_origins(&[
            "https://a.example.com".into(),
            "http://localhost:8000".into(),
        ])
        .unwrap();
        assert_eq!(ok.len(), 2);
        for bad in [
            "https://a.example.com/",
            "a.example.com",
            "ftp://x",
            "https://",
            "https://a/b",
        ] {
            assert!(parse_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
