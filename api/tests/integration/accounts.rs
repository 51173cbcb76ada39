//! Accounts, ownership and quotas against the service run in this test process (and a
//! worker started in process for the refund): JWT tampering, DB-side blocking and demotion, cross-user access,
//! token refund on failure, quota and rate limits.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The API's JWT secret here: random (`openssl rand -hex 32`), as weak ones stop start-up.
const SECRET: &str = "b9cd20dafe6958246c870b1b31b9213c08a5a8dff119ce42b4a4fa400c02380f";

/// Registers `email`; checks the answer is a free account's bearer token and returns it.
async fn register_free(base: &str, email: &str) -> String {
    let body = register(base, email).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["tier"], "free");
    access_token(&body)
}

async fn upload_as(
    base: &str,
    token: Option<&str>,
    guest: &str,
    fields: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(wav_bytes(1.0)).file_name("a.wav"),
    );
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    let mut req = client_with_guest(guest)
        .post(format!("{base}/api/v2/master"))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// URL-safe base64 without padding, as JWT uses.
fn b64(bytes: &[u8]) -> String {
    base64(bytes, BASE64_URL, false)
}

/// Tampered, expired, `alg: none` and foreign-key tokens are all 401; the real one works.
#[tokio::test(flavor = "multi_thread")]
async fn forged_tampered_and_expired_tokens_are_rejected() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("JWT_SECRET", SECRET)]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let token = register_free(&base, "alice@example.com").await;
    let (status, me) = get_auth(&base, "/api/auth/me", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["tokens"], 0);
    assert_eq!(me["is_admin"], false);
    let user_id = me["id"].as_i64().unwrap();

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let now = chrono::Utc::now().timestamp();
    // Payload changed to another user, signature kept.
    let forged_payload = b64(
        json!({"sub": (user_id + 1).to_string(), "iat": now, "exp": now + 3600})
            .to_string()
            .as_bytes(),
    );
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    // alg: none, no signature.
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // Correctly signed but expired an hour ago.
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let claims = json!({"sub": user_id.to_string(), "iat": now - 7200, "exp": now - 3600});
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    // Signed with another key.
    let other = jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-0123456789-0123456789");
    let claims = json!({"sub": user_id.to_string(), "iat": now, "exp": now + 3600});
    let foreign = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &other).unwrap();

    for (what, bad) in [
        ("tampered", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("expired", expired.as_str()),
        ("foreign key", foreign.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        for path in ["/api/auth/me", "/api/limits", "/api/jobs"] {
            let (status, body) = get_auth(&base, path, bad).await;
            assert_eq!(status, 401, "{what} on {path}: {body}");
            assert!(body["code"].is_string(), "{body}");
        }
    }
    let (_, body) = get_auth(&base, "/api/auth/me", &expired).await;
    assert_eq!(body["code"], "token-expired");
    // Without a token, `me` and the history need a login.
    assert_eq!(
        fetch(format!("{base}/api/auth/me")).await.status().as_u16(),
        401
    );

    // Login: right password works, wrong one and unknown email are the same 401.
    let (status, body) = login(&base, "ALICE@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    for (email, password) in [
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let (status, body) = login(&base, email, password).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid-credentials"))
        );
    }
    // Registration errors.
    for (email, password, expected) in [
        ("alice@example.com", PASSWORD, (409, Some("email-taken"))),
        ("bob@example.com", "short", (400, Some("weak-password"))),
        ("bob", PASSWORD, (400, Some("invalid-email"))),
    ] {
        let (status, body, _) = post_json(
            &base,
            "/api/auth/register",
            json!({"email": email, "password": password}),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), expected);
    }
    // The stored hash is argon2id, never the password.
    let hash: String = query_one(
        &env,
        "SELECT password_hash FROM users WHERE email = 'alice@example.com'",
    )
    .await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

/// Blocking or demoting in the database takes effect on the next request with the same token;
/// the first admin comes from the environment.
#[tokio::test(flavor = "multi_thread")]
async fn blocked_or_demoted_in_the_database_loses_access_at_once() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "admin password 1"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let (status, body) = login(&base, "root@example.com", "admin password 1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_admin"], true);
    let admin = access_token(&body);
    assert_eq!(get_me(&base, &admin).await["is_admin"], true);
    sql(
        &env,
        "UPDATE users SET is_admin = 0 WHERE email = 'root@example.com'",
    )
    .await;
    assert_eq!(
        get_me(&base, &admin).await["is_admin"],
        false,
        "demoted at once"
    );

    let token = register_free(&base, "carol@example.com").await;
    assert_eq!(get_auth(&base, "/api/auth/me", &token).await.0, 200);
    // Times are sent as they are stored: RFC 3339, UTC, milliseconds even when they are 0.
    sql(
        &env,
        "UPDATE users SET tier = 'pro', tier_expires_at = '2999-01-01T00:00:00.000Z' \
         WHERE email = 'carol@example.com'",
    )
    .await;
    let me = get_me(&base, &token).await;
    let created: String = query_one(
        &env,
        "SELECT created_at FROM users WHERE email = 'carol@example.com'",
    )
    .await;
    assert_eq!(
        (me["tier_expires_at"].as_str(), me["created_at"].as_str()),
        (Some("2999-01-01T00:00:00.000Z"), Some(created.as_str())),
        "{me}"
    );
    assert!(created.len() == 24 && created.ends_with('Z'), "{created}");
    sql(
        &env,
        "UPDATE users SET is_blocked = 1 WHERE email = 'carol@example.com'",
    )
    .await;
    for path in ["/api/auth/me", "/api/limits", "/api/jobs"] {
        let (status, body) = get_auth(&base, path, &token).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("user-blocked")),
            "{path}"
        );
    }
    let (status, body) = login(&base, "carol@example.com", PASSWORD).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("user-blocked")));
    let (status, _, _) = upload_as(&base, Some(&token), guest_token(), &[]).await;
    assert_eq!(status, 403, "a blocked user cannot upload");
    // A deleted account's token is dead too.
    sql(&env, "DELETE FROM users WHERE email = 'carol@example.com'").await;
    assert_eq!(get_auth(&base, "/api/auth/me", &token).await.0, 401);
}

/// A job is visible only to its owner: user B and other guests get 404 everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn other_users_and_guests_cannot_see_a_job() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let a = register_free(&base, "a@example.com").await;
    let b = register_free(&base, "b@example.com").await;
    let (status, body, _) = upload_as(&base, Some(&a), guest_token(), &[]).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body.get("guest_token").is_none(),
        "users get no guest token"
    );
    let job_a = body["job_id"].as_str().unwrap().to_owned();

    // A guest upload without any token gets a fresh guest cookie.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/master"))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(wav_bytes(1.0)).file_name("g.wav"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("mm_guest=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body: Value = r.json().await.unwrap();
    let guest_job = body["job_id"].as_str().unwrap().to_owned();
    let guest = body["guest_token"].as_str().unwrap().to_owned();
    let cookie_value = cookie.split(';').next().unwrap().to_owned();

    let paths = |id: &str| {
        vec![
            format!("/api/master/status/{id}"),
            format!("/api/master/progress/{id}"),
            format!("/api/master/result/{id}"),
            format!("/api/master/preview/{id}?src=original"),
        ]
    };
    for path in paths(&job_a) {
        let (status, body) = get_auth(&base, &path, &b).await;
        assert_eq!(status, 404, "user B on {path}: {body}");
        let r = fetch(format!("{base}{path}")).await;
        assert_eq!(r.status().as_u16(), 404, "a guest on {path}");
    }
    for path in paths(&guest_job) {
        let (status, _) = get_auth(&base, &path, &b).await;
        assert_eq!(status, 404, "user B on the guest's {path}");
        let r = fetch(format!("{base}{path}")).await;
        assert_eq!(r.status().as_u16(), 404, "another guest on {path}");
    }
    // The owners see theirs: status 200, result 409 (not done yet), preview of the original 200.
    assert_eq!(
        get_auth(&base, &format!("/api/master/status/{job_a}"), &a)
            .await
            .0,
        200
    );
    assert_eq!(
        get_auth(&base, &format!("/api/master/result/{job_a}"), &a)
            .await
            .0,
        409
    );
    let r = client_with_guest(&guest)
        .get(format!("{base}/api/master/status/{guest_job}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/api/master/preview/{guest_job}?src=original"
        ))
        .header("cookie", cookie_value)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "the guest cookie alone is enough (plain links)"
    );

    // Histories.
    let (status, list) = get_auth(&base, "/api/jobs", &a).await;
    assert_eq!(status, 200);
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job_id"], job_a.as_str());
    assert_eq!(jobs[0]["original_filename"], "a.wav");
    assert_eq!(jobs[0]["status"], "queued");
    let (_, list) = get_auth(&base, "/api/jobs", &b).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);
}

/// Status of `id` for the user with `token`, once its status is final.
async fn wait_final_as(base: &str, id: &str, token: &str) -> Value {
    wait_for(
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || {
            let (_, s) = get_auth(base, &format!("/api/master/status/{id}"), token).await;
            match s["status"].as_str() {
                Some("done" | "failed") => Ok(s),
                _ => Err(format!("job {id} not finished: {s}")),
            }
        },
    )
    .await
}

/// Cancel by the owner: another user or a guest gets 404 (as for the status) and changes
/// nothing; the owner's queued job is `failed` with `error_code` `cancelled` at once, its
/// upload deleted and its master refunded, and a worker started afterwards never runs it;
/// a finished job cannot be cancelled (409 `already-finished`).
#[tokio::test(flavor = "multi_thread")]
async fn only_the_owner_cancels_a_job_and_a_cancelled_queued_job_never_runs() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0")]);
    let _api = env.start_api().await;
    let base = env.base_url();
    let owner = register_free(&base, "owner@example.com").await;
    let other = register_free(&base, "other@example.com").await;
    let (status, body, _) = upload_as(&base, Some(&owner), guest_token(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let job = body["job_id"].as_str().unwrap().to_owned();
    let cancel = format!("/api/master/cancel/{job}");
    let (_, limits) = get_auth(&base, "/api/limits", &owner).await;
    assert_eq!(limits["used_today"], 1, "{limits}");

    let (status, body) = post_auth(&base, &cancel, &other, &json!({})).await;
    assert_eq!(
        (status, &body["code"]),
        (404, &json!("not-found")),
        "{body}"
    );
    let (status, body, _) = answer(client().post(format!("{base}{cancel}"))).await;
    assert_eq!(
        (status, &body["code"]),
        (404, &json!("not-found")),
        "{body}"
    );
    assert_eq!(job_row(&env, &job).await.status.as_str(), "queued");

    let (status, body) = post_auth(&base, &cancel, &owner, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["job_id"], &body["status"], &body["error_code"]),
        (&json!(job), &json!("failed"), &json!("cancelled")),
        "{body}"
    );
    assert!(env.files_under(&format!("uploads/{job}")).is_empty());
    let (_, limits) = get_auth(&base, "/api/limits", &owner).await;
    assert_eq!(limits["used_today"], 0, "cancelled before it ran: refunded");
    // Cancelling again is the same answer; the result says why there is none.
    let (status, again) = post_auth(&base, &cancel, &owner, &json!({})).await;
    assert_eq!((status, &again["error_code"]), (200, &json!("cancelled")));
    let (status, body) = get_auth(&base, &format!("/api/master/result/{job}"), &owner).await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("cancelled")),
        "{body}"
    );

    // A worker started now masters the next job and never runs the cancelled one.
    let (status, body, _) = upload_as(&base, Some(&owner), guest_token(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let next = body["job_id"].as_str().unwrap().to_owned();
    let _worker = env.start_worker("cancel-worker");
    assert_eq!(wait_final_as(&base, &next, &owner).await["status"], "done");
    let row = job_row(&env, &job).await;
    assert_eq!((row.attempts, row.worker.as_deref()), (0, None), "{row:?}");
    let (status, body) = post_auth(
        &base,
        &format!("/api/master/cancel/{next}"),
        &owner,
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("already-finished")),
        "{body}"
    );
}

/// Quota: the token taken by a job that fails in the worker comes back, exactly once;
/// with nothing left the upload is 429 with the reset time; paid formats are refused to
/// free users.
#[tokio::test(flavor = "multi_thread")]
async fn failed_job_refunds_its_token_and_exhausted_quota_is_429() {
    let env = Env::new(&[("EMBEDDED_WORKERS", "0"), ("JOB_MAX_ATTEMPTS", "1")]);
    let api = env.spawn_app().await;
    let base = env.base_url();
    let token = register_free(&base, "dave@example.com").await;
    let (_, limits) = get_auth(&base, "/api/limits", &token).await;
    assert_eq!(limits["tier"], "free");
    assert_eq!(limits["used_today"], 0);
    assert_eq!(
        (&limits["formats"], &limits["bit_depths"]),
        (&json!(["wav"]), &json!([16]))
    );
    let daily = limits["daily_limit"].as_u64().unwrap();
    assert_eq!(limits["remaining"].as_u64(), Some(daily));
    chrono::DateTime::parse_from_rfc3339(limits["reset_at"].as_str().unwrap()).unwrap();

    // Free users: 16-bit WAV only.
    let (status, body, _) = upload_as(
        &base,
        Some(&token),
        guest_token(),
        &[("out_format", "flac")],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("format-not-allowed")),
        "{body}"
    );

    // Use up the day (earlier jobs of today), give one bought token.
    let day = shared::quota::day(chrono::Utc::now());
    let mut statements = String::new();
    for i in 0..daily {
        statements.push_str(&format!(
            "INSERT INTO quota_usage (job_id, user_id, day, source, created_at) \
             SELECT 'earlier{i}', id, '{day}', 'daily', '{day}' FROM users WHERE email = 'dave@example.com';"
        ));
    }
    statements.push_str("UPDATE users SET tokens = 1 WHERE email = 'dave@example.com';");
    sql(&env, statements).await;
    let (_, limits) = get_auth(&base, "/api/limits", &token).await;
    assert_eq!(
        (limits["remaining"].as_u64(), limits["tokens"].as_i64()),
        (Some(0), Some(1))
    );

    let (status, body, _) = upload_as(&base, Some(&token), guest_token(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let job = body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(get_me(&base, &token).await["tokens"], 0, "token reserved");

    // Nothing left: 429 with reset_at and Retry-After.
    let (status, body, headers) = upload_as(&base, Some(&token), guest_token(), &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota-exhausted")),
        "{body}"
    );
    let reset_at =
        chrono::DateTime::parse_from_rfc3339(body["reset_at"].as_str().unwrap()).unwrap();
    let retry_after: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    let until_reset = reset_at.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (retry_after - until_reset).abs() <= 5 && retry_after > 0,
        "{retry_after} vs {until_reset}"
    );

    // The job's input disappears: the worker fails it for good (1 attempt) and refunds.
    let row = job_row(&env, &job).await;
    std::fs::remove_file(&row.input_path).unwrap();
    let _worker = env.spawn_worker("refund-worker").await;
    wait_for(
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || {
            let (_, s) = get_auth(&base, &format!("/api/master/status/{job}"), &token).await;
            if s["status"] == "failed" {
                Ok(())
            } else {
                Err(format!("job not failed: {s}"))
            }
        },
    )
    .await;
    let (_, me) = get_auth(&base, "/api/auth/me", &token).await;
    assert_eq!(me["tokens"], 1, "the token came back");
    let refunds = query_one::<i64>(
        &env,
        "SELECT COUNT(*) FROM quota_usage WHERE refunded_at IS NOT NULL",
    )
    .await;
    assert_eq!(refunds, 1);
    drop(api);
}

/// Guests: N masters a day per IP, then 429 with the reset time; 24-bit is refused.
#[tokio::test(flavor = "multi_thread")]
async fn guest_daily_limit_per_ip() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("GUEST_DAILY_LIMIT", "2"),
        ("AUTH_RATE_LIMIT", "3"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let (status, body, _) = upload_as(&base, None, guest_token(), &[("bit_depth", "24")]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("format-not-allowed"))
    );
    for i in 0..2 {
        // A new guest token does not reset the per-IP allowance.
        let other = format!("{:0>40}", i);
        let (status, body, _) = upload_as(&base, None, &other, &[]).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, body, headers) = upload_as(&base, None, guest_token(), &[]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota-exhausted")),
        "{body}"
    );
    assert!(body["reset_at"].is_string() && headers.contains_key("retry-after"));
    let limits = get_json(format!("{base}/api/limits")).await;
    assert_eq!(limits["tier"], "guest");
    assert_eq!(
        (&limits["formats"], &limits["bit_depths"]),
        (&json!(["wav"]), &json!([16]))
    );
    assert_eq!(
        (limits["used_today"].as_u64(), limits["remaining"].as_u64()),
        (Some(2), Some(0))
    );

    // Auth routes: 3 a minute per IP, then 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..4 {
        let (status, _, headers) = post_json(
            &base,
            "/api/auth/login",
            json!({"email": "x@example.com", "password": "whatever1"}),
        )
        .await;
        statuses.push(status);
        retry = headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

/// The admin API: 401 without a token, 403 for users (and for an admin demoted in the
/// database), a backup that passes `PRAGMA integrity_check`, user and job management, masked
/// settings, and an audit row for each action.
#[tokio::test(flavor = "multi_thread")]
async fn admin_api_and_backup_route() {
    let env = Env::new(&[
        ("EMBEDDED_WORKERS", "0"),
        ("JOB_MAX_ATTEMPTS", "1"),
        ("ADMIN_EMAIL", "root@example.com"),
        ("ADMIN_PASSWORD", "admin password 1"),
        // Both YooKassa credentials (one alone stops start-up); no payment is made here.
        ("YOOKASSA_SHOP_ID", "506751"),
        ("YOOKASSA_SECRET_KEY", "live_supersecret"),
    ]);
    let _api = env.spawn_app().await;
    let base = env.base_url();
    let user = register_free(&base, "erin@example.com").await;
    let (_, body) = login(&base, "root@example.com", "admin password 1").await;
    let admin = access_token(&body);

    // 401 / 403 / 200 on the backup route.
    let backup = format!("{base}/api/admin/backup/db");
    assert_eq!(fetch(backup.clone()).await.status().as_u16(), 401);
    assert_eq!(send_as(client().get(&backup), &user).await.0, 403);
    let r = client()
        .get(&backup)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    let name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap()
        .to_owned();
    assert!(
        name.starts_with("magic_master_backup_") && name.ends_with(".sqlite3") && name.len() == 43,
        "{name}"
    );
    let bytes = r.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(&name);
    std::fs::write(&copy, &bytes).unwrap();
    shared::backup::integrity_check(&copy).expect("snapshot passes integrity_check");
    let snap = shared::db::open_pool(&copy, 1).unwrap();
    let users: i64 = shared::db::with_conn(&snap, |c| {
        c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
    })
    .await
    .unwrap();
    assert_eq!(users, 2, "the snapshot holds the accounts");
    assert!(
        env.files_under("tmp").is_empty(),
        "no snapshot left behind: {:?}",
        env.files_under("tmp")
    );

    // Users: search, tier change, tokens, block.
    let (status, list) = get_auth(&base, "/api/admin/users?q=ERIN", &admin).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    let erin_id = list["users"][0]["id"].as_i64().unwrap();
    let patch = |body: Value| {
        let (base, admin) = (base.clone(), admin.clone());
        async move {
            let r = client()
                .patch(format!("{base}/api/admin/users/{erin_id}"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, u) = patch(json!({"tier": "pro"})).await;
    assert_eq!((status, u["tier"].as_str()), (200, Some("pro")), "{u}");
    let (_, limits) = get_auth(&base, "/api/limits", &user).await;
    assert_eq!(
        (&limits["tier"], &limits["formats"], &limits["bit_depths"]),
        (
            &json!("pro"),
            &json!(["wav", "flac", "mp3"]),
            &json!([16, 24])
        )
    );
    let (status, _) = patch(json!({"tier": "platinum"})).await;
    assert_eq!(status, 400);
    let (status, u) = post_auth(
        &base,
        &format!("/api/admin/users/{erin_id}/tokens"),
        &admin,
        &json!({"amount": 5}),
    )
    .await;
    assert_eq!((status, &u["tokens"]), (200, &json!(5)));
    let (status, u) = patch(json!({"is_blocked": true})).await;
    assert_eq!((status, u["is_blocked"].as_bool()), (200, Some(true)));
    assert_eq!(get_auth(&base, "/api/auth/me", &user).await.0, 403);
    patch(json!({"is_blocked": false})).await;
    assert_eq!(get_auth(&base, "/api/auth/me", &user).await.0, 200);

    // Jobs: a failed one is listed and retried; a queued one cannot be retried.
    let (status, body, _) = upload_as(&base, Some(&user), guest_token(), &[]).await;
    assert_eq!(status, 202, "{body}");
    let job = body["job_id"].as_str().unwrap().to_owned();
    let retry = || {
        send_as(
            client().post(format!("{base}/api/admin/jobs/{job}/retry")),
            &admin,
        )
    };
    assert_eq!(retry().await.0, 409, "queued jobs are not retried");
    sql(
        &env,
        format!("UPDATE master_jobs SET status = 'failed', error = 'x' WHERE id = '{job}'"),
    )
    .await;
    let (status, list) = get_auth(&base, "/api/admin/jobs?status=failed", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["jobs"][0]["user_email"], "erin@example.com");
    assert_eq!(retry().await.0, 200);
    assert_eq!(
        job_row(&env, &job).await.status,
        shared::jobs::JobStatus::Queued
    );

    // Settings: secrets masked.
    let (status, s) = get_auth(&base, "/api/admin/settings", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(s["settings"]["MAGIC_MASTER_YOOKASSA_SECRET_KEY"], "***");
    assert_eq!(s["settings"]["MAGIC_MASTER_JWT_SECRET"], "***");
    assert!(!s.to_string().contains("supersecret"));
    assert!(!s.to_string().contains("admin password 1"));

    let (status, stats) = get_auth(&base, "/api/admin/stats", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(stats["users_total"], 2);
    assert_eq!(stats["jobs_total"], 1);

    // Every action audited.
    let actions = query_one::<i64>(&env, "SELECT COUNT(DISTINCT action) FROM admin_audit").await;
    assert!(actions >= 8, "{actions} distinct audited actions");
    let audited_backup = query_one::<i64>(
        &env,
        "SELECT COUNT(*) FROM admin_audit WHERE action = 'backup.download'",
    )
    .await;
    assert_eq!(audited_backup, 1);

    // Demoted in the database: 403 at once with the same token.
    sql(
        &env,
        "UPDATE users SET is_admin = 0 WHERE email = 'root@example.com'",
    )
    .await;
    for path in [
        "/api/admin/stats",
        "/api/admin/backup/db",
        "/api/admin/users",
    ] {
        assert_eq!(get_auth(&base, path, &admin).await.0, 403, "{path}");
    }
}
