//! Hostile and broken requests get a clear 4xx `{code, message}`, never a 500 or a crash.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn raw_login(h: &Harness, content_type: Option<&str>, body: Vec<u8>) -> Reply {
    let mut req = h.http.post(h.url("/api/auth/login")).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    Harness::reply(req.send().await.expect("sent")).await
}

#[tokio::test]
async fn malformed_json_is_invalid_request() {
    let h = Harness::start().await;
    let cases: [&[u8]; 6] = [
        b"{",
        b"not json at all",
        b"{\"email\": \"a@b.c\"}",
        b"{\"email\": 42, \"password\": \"x\"}",
        b"[]",
        b"{\"email\": \"a@b.c\", \"password\": \"\xff\xfe\"}",
    ];
    for body in cases {
        let r = raw_login(&h, Some("application/json"), body.to_vec()).await;
        assert_eq!(
            r.error_code(StatusCode::BAD_REQUEST),
            "invalid_request",
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let r = raw_login(
        &h,
        Some("application/json"),
        b"{\"email\": \"\", \"password\": \"x\"}".to_vec(),
    )
    .await;
    assert_eq!(r.error_code(StatusCode::BAD_REQUEST), "invalid_request");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let h = Harness::start().await;
    let r = raw_login(&h, None, b"email=a&password=b".to_vec()).await;
    assert_eq!(
        r.error_code(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        "unsupported_media_type"
    );
    let r = raw_login(&h, Some("text/plain"), b"{}".to_vec()).await;
    assert_eq!(
        r.error_code(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn a_one_megabyte_body_is_413() {
    let h = Harness::start().await;
    let big = format!(
        "{{\"email\": \"a@b.c\", \"password\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let r = raw_login(&h, Some("application/json"), big.into_bytes()).await;
    assert_eq!(
        r.error_code(StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    // Authenticated routes too, and the server is still fine afterwards.
    let token = h.login(CLAIRE).await;
    let r = h
        .request(
            Method::POST,
            "/api/live-sessions/2/cancel",
            Some(&token),
            Some(json!({ "reason": "y".repeat(1 << 20) })),
        )
        .await;
    assert_eq!(
        r.error_code(StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    h.get("/api/me", &token).await.ok();
}

#[tokio::test]
async fn sql_like_strings_are_just_strings() {
    let h = Harness::start().await;
    for email in [
        "' OR '1'='1",
        "claire.martin@estrade.example' --",
        "\"; DROP TABLE users; --",
    ] {
        let r = h.login_reply(email, "' OR '1'='1").await;
        assert_eq!(
            r.error_code(StatusCode::UNAUTHORIZED),
            "invalid_credentials",
            "{email}"
        );
    }
    let token = h.login(CLAIRE).await;
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&token),
            Some(json!({ "room_name": "x' OR '1'='1" })),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::NOT_FOUND), "not_found");
    let r = h
        .request(
            Method::POST,
            "/api/live-sessions/2/cancel",
            Some(&token),
            Some(json!({ "reason": "'); DELETE FROM live_sessions; --" })),
        )
        .await;
    assert_eq!(r.ok()["cancel_reason"], "'); DELETE FROM live_sessions; --");
    assert_eq!(
        h.get("/api/live-sessions", &token)
            .await
            .ok()
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // The users table is intact too.
    h.login(LEA).await;
}

#[tokio::test]
async fn oversized_fields_and_strange_headers_are_refused_cleanly() {
    let h = Harness::start().await;
    let r = h.login_reply(&"a".repeat(400), "x").await;
    assert_eq!(r.error_code(StatusCode::BAD_REQUEST), "invalid_request");
    let r = h.login_reply("a@b.c", &"p".repeat(2000)).await;
    assert_eq!(r.error_code(StatusCode::BAD_REQUEST), "invalid_request");
    let r = h.get("/api/me", &"t".repeat(4000)).await;
    assert_eq!(r.error_code(StatusCode::UNAUTHORIZED), "invalid_token");
    let r = h
        .http
        .get(h.url("/api/me"))
        .header("Authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        Harness::reply(r).await.error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
    let r = h
        .http
        .get(h.url("/api/me"))
        .header(
            "Authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xe9\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        Harness::reply(r).await.error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let h = Harness::start().await;
    let r = h.request(Method::GET, "/api/nope", None, None).await;
    assert_eq!(r.error_code(StatusCode::NOT_FOUND), "not_found");
    let r = h.request(Method::GET, "/api/auth/login", None, None).await;
    assert_eq!(
        r.error_code(StatusCode::METHOD_NOT_ALLOWED),
        "method_not_allowed"
    );
    let r = h
        .request(Method::DELETE, "/api/live-sessions/1", None, None)
        .await;
    assert_eq!(
        r.error_code(StatusCode::METHOD_NOT_ALLOWED),
        "method_not_allowed"
    );
    let r = h.request(Method::GET, "/api/health", None, None).await;
    assert_eq!(r.ok()["status"], "ok");
}
