//! Accounts over HTTP: register, log in, and requests that carry a bearer token.

use super::{client, post_json};
use serde_json::{Value, json};

/// The password the test accounts are registered with.
pub const PASSWORD: &str = "long enough pw";

/// Registers `email` with [`PASSWORD`]; panics unless 201; returns the JSON answer.
pub async fn register(base: &str, email: &str) -> Value {
    let (status, body, _) = post_json(
        base,
        "/api/auth/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Registers `email`; returns its access token and its user id (read from `/api/auth/me`).
pub async fn register_user(base: &str, email: &str) -> (String, i64) {
    let token = access_token(&register(base, email).await);
    let me = get_me(base, &token).await;
    (token, me["id"].as_i64().unwrap())
}

/// The `access_token` of a register or login answer.
pub fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

/// POSTs a login; returns the status and the JSON answer.
pub async fn login(base: &str, email: &str, password: &str) -> (u16, Value) {
    let (status, body, _) = post_json(
        base,
        "/api/auth/login",
        json!({"email": email, "password": password}),
    )
    .await;
    (status, body)
}

/// Sends `request` with `token` as its bearer; returns the status and the JSON answer (Null
/// if none).
pub async fn send_as(request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
    let r = request.bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GET `path` as `token`'s user.
pub async fn get_auth(base: &str, path: &str, token: &str) -> (u16, Value) {
    send_as(client().get(format!("{base}{path}")), token).await
}

/// POST `body` as JSON to `path` as `token`'s user.
pub async fn post_auth(base: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
    send_as(client().post(format!("{base}{path}")).json(body), token).await
}

/// `/api/auth/me` of `token`'s user, whatever the status.
pub async fn get_me(base: &str, token: &str) -> Value {
    get_auth(base, "/api/auth/me", token).await.1
}
