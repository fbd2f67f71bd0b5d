//! Sign-in, tokens, refresh rotation, logout.

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn login_returns_tokens_and_the_user() {
    let h = Harness::start().await;
    let r = h
        .login_reply(CLAIRE, estrade_devserver::seed::DEMO_PASSWORD)
        .await;
    let body = r.ok();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["name"], "Claire Martin");
    assert_eq!(body["user"]["role"], "trainer");
    assert!(body["access_token"].as_str().unwrap().len() > 40);
    assert_ne!(body["access_token"], body["refresh_token"]);
    // Emails are case-insensitive and trimmed.
    h.login_reply(
        "  Claire.Martin@ESTRADE.example ",
        estrade_devserver::seed::DEMO_PASSWORD,
    )
    .await
    .ok();
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let h = Harness::start().await;
    let wrong = h.login_reply(CLAIRE, "not-it").await;
    let unknown = h.login_reply("nobody@estrade.example", "not-it").await;
    assert_eq!(
        wrong.error_code(StatusCode::UNAUTHORIZED),
        "invalid_credentials"
    );
    assert_eq!(
        unknown.error_code(StatusCode::UNAUTHORIZED),
        "invalid_credentials"
    );
    assert_eq!(wrong.body["message"], unknown.body["message"]);
}

#[tokio::test]
async fn me_needs_a_valid_bearer_token() {
    let h = Harness::start().await;
    let token = h.login(LEA).await;
    let me = h.get("/api/me", &token).await;
    assert_eq!(me.ok()["email"], LEA);
    assert_eq!(me.ok()["role"], "student");

    let none = h.request(Method::GET, "/api/me", None, None).await;
    assert_eq!(none.error_code(StatusCode::UNAUTHORIZED), "unauthenticated");

    let basic = h
        .http
        .get(h.url("/api/me"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(
        Harness::reply(basic)
            .await
            .error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );

    let forged = h
        .get("/api/me", "at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(forged.error_code(StatusCode::UNAUTHORIZED), "invalid_token");

    // A well-formed JWT signed with the LiveKit secret is still not an access token.
    let lk = h.post("/api/live-sessions/1/join", &token).await.ok()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = h.get("/api/me", &lk).await;
    assert_eq!(jwt.error_code(StatusCode::UNAUTHORIZED), "invalid_token");
}

#[tokio::test]
async fn expired_access_tokens_say_so_and_refresh_rotates() {
    let h = Harness::start().await;
    let login = h
        .login_reply(THOMAS, estrade_devserver::seed::DEMO_PASSWORD)
        .await;
    let access = login.ok()["access_token"].as_str().unwrap().to_owned();
    let refresh = login.ok()["refresh_token"].as_str().unwrap().to_owned();

    h.clock.advance(Duration::from_secs(901));
    let expired = h.get("/api/me", &access).await;
    assert_eq!(
        expired.error_code(StatusCode::UNAUTHORIZED),
        "token_expired"
    );

    let r = h.refresh(&refresh).await;
    let new_access = r.ok()["access_token"].as_str().unwrap().to_owned();
    let new_refresh = r.ok()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    assert_eq!(h.get("/api/me", &new_access).await.ok()["email"], THOMAS);

    // The old refresh token came back: someone has a copy. Every sign-in of the user ends.
    let replay = h.refresh(&refresh).await;
    assert_eq!(
        replay.error_code(StatusCode::UNAUTHORIZED),
        "invalid_refresh_token"
    );
    assert_eq!(
        h.get("/api/me", &new_access)
            .await
            .error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
    let after = h.refresh(&new_refresh).await;
    assert_eq!(
        after.error_code(StatusCode::UNAUTHORIZED),
        "invalid_refresh_token"
    );
}

#[tokio::test]
async fn refresh_tokens_expire() {
    let h = Harness::start().await;
    let login = h
        .login_reply(THOMAS, estrade_devserver::seed::DEMO_PASSWORD)
        .await;
    let refresh = login.ok()["refresh_token"].as_str().unwrap().to_owned();
    h.clock.advance(Duration::from_secs(31 * 24 * 3600));
    let r = h.refresh(&refresh).await;
    assert_eq!(
        r.error_code(StatusCode::UNAUTHORIZED),
        "invalid_refresh_token"
    );
    let forged = h.refresh("rt_forged").await;
    assert_eq!(
        forged.error_code(StatusCode::UNAUTHORIZED),
        "invalid_refresh_token"
    );
}

#[tokio::test]
async fn logout_revokes_both_tokens() {
    let h = Harness::start().await;
    let login = h
        .login_reply(LEA, estrade_devserver::seed::DEMO_PASSWORD)
        .await;
    let access = login.ok()["access_token"].as_str().unwrap().to_owned();
    let refresh = login.ok()["refresh_token"].as_str().unwrap().to_owned();
    let out = h
        .request(
            Method::POST,
            "/api/auth/logout",
            Some(&access),
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/me", &access)
            .await
            .error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
    let r = h.refresh(&refresh).await;
    assert_eq!(
        r.error_code(StatusCode::UNAUTHORIZED),
        "invalid_refresh_token"
    );

    // An empty body is fine too.
    let access = h.login(LEA).await;
    let out = h
        .request(Method::POST, "/api/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/api/me", &access)
            .await
            .error_code(StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
}
