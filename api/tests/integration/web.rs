//! The embedded web app served by the API (run in this test process): the URL map, content types,
//! caching and security headers of `web/README.md`.

use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_assets_are_served_with_their_headers() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let c = client();
    let pages = [
        ("/", "index.html"),
        ("/?job=0123", "index.html"),
        ("/login?next=/admin", "login.html"),
        ("/account", "account.html"),
        ("/pricing", "pricing.html"),
        ("/payment/return?payment_id=x", "payment-return.html"),
        ("/admin", "admin.html"),
        ("/status", "status.html"),
    ];
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    for (url, file) in pages {
        let r = c.get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{url}");
        assert_eq!(h["cache-control"], "no-cache", "{url}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{url}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("referrer-policy"));
        let body = r.bytes().await.unwrap();
        assert_eq!(
            body.as_ref(),
            std::fs::read(web.join(file)).unwrap(),
            "{url}"
        );
        let head = c.head(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200, "HEAD {url}");
    }
    let assets = [
        ("/assets/js/common.js", "text/javascript; charset=utf-8"),
        ("/assets/js/status.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ];
    for (url, ct) in assets {
        let r = c.get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], ct, "{url}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{url}");
        let rel = url.trim_start_matches('/');
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            std::fs::read(web.join(rel)).unwrap()
        );
    }
    for url in [
        "/assets/js/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/README.md",
        "/assets/README.md",
        "/index.html.bak",
    ] {
        let r = c.get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{url}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{url}");
    }
    // API answers carry the security headers too.
    let r = c.get(format!("{base}/api/styles")).send().await.unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

/// Unknown browser URLs get the HTML 404 page (styled like the others, both languages
/// through the shared i18n, a link home); unknown `/api/*` URLs keep the JSON error.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_get_the_html_404_page_and_api_keeps_json() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let c = client();
    let page =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/404.html"))
            .unwrap();
    for url in [
        "/no-such-page",
        "/deep/no/such/page?x=1",
        "/assets/js/nope.js",
        "/account/",
    ] {
        let r = c
            .get(format!("{base}{url}"))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{url}");
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{url}");
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), page, "{url}");
        let head = c.head(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 404, "HEAD {url}");
    }
    let text = String::from_utf8(page).unwrap();
    for part in [
        "href=\"/\"",
        "/assets/style.css",
        "/assets/js/error-page.js",
        "data-i18n=\"notFound.title\"",
    ] {
        assert!(text.contains(part), "{part} not in the 404 page");
    }
    for url in ["/api/no-such", "/api/v2/nope", "/api"] {
        let r = c
            .get(format!("{base}{url}"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{url}");
        assert_eq!(r.headers()["content-type"], "application/json", "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not-found", "{url}: {body}");
        assert!(body["detail"].is_string(), "{url}: {body}");
    }
}
