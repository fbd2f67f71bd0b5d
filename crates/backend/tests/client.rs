//! The backend client against the real devserver over HTTP, and against broken servers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use estrade_backend::api::{ErrorCode, SessionId, SessionRole, SessionStatus, User};
use estrade_backend::{ApiError, Backend, BackendUrl, BoxFuture, RefreshTokenSink, Secret};
use estrade_devserver::{Config, ManualClock, RunningServer, seed};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const LEA: &str = "lea.dubois@estrade.example";

async fn devserver() -> (RunningServer, Arc<ManualClock>, Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let server = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        clock: clock.clone(),
        ..Config::default()
    })
    .await
    .unwrap();
    let backend = Backend::new(BackendUrl::parse(&server.url()).unwrap()).unwrap();
    (server, clock, backend)
}

fn demo_password() -> Secret {
    Secret::new(seed::DEMO_PASSWORD)
}

#[tokio::test]
async fn typed_calls_for_every_endpoint() {
    let (_server, _clock, backend) = devserver().await;
    let claire = backend
        .login(seed::DEMO_TRAINER_EMAIL, &demo_password())
        .await
        .unwrap();
    assert_eq!(claire.user().name, "Claire Martin");
    assert_eq!(claire.me().await.unwrap().email, seed::DEMO_TRAINER_EMAIL);

    let sessions = claire.live_sessions().await.unwrap();
    assert_eq!(sessions.len(), 5);
    let live = sessions
        .iter()
        .find(|s| s.status == SessionStatus::Live)
        .unwrap();
    assert_eq!(live.my_role, SessionRole::Trainer);
    assert_eq!(
        claire.live_session(&live.id).await.unwrap().title,
        live.title
    );

    let join = claire.join_session(&live.id).await.unwrap();
    assert_eq!(join.role, SessionRole::Trainer);
    assert_eq!(join.identity, claire.user().id);
    assert!(join.url.starts_with("ws://127.0.0.1"));
    let token = claire.livekit_token(&join.room_name).await.unwrap();
    assert_eq!(token.room_name, join.room_name);
    assert_eq!(claire.attendance(&live.id).await.unwrap().len(), 1);
    assert_eq!(
        claire.leave_session(&live.id).await.unwrap().total_seconds,
        0
    );

    let tomorrow = SessionId(seed::sessions::TOMORROW.to_string());
    assert_eq!(
        claire.start_session(&tomorrow).await.unwrap().status,
        SessionStatus::Live
    );
    assert_eq!(
        claire.end_session(&tomorrow).await.unwrap().status,
        SessionStatus::Ended
    );
    let workshop = SessionId(seed::sessions::WORKSHOP.to_string());
    let karim = backend
        .login("karim.benali@estrade.example", &demo_password())
        .await
        .unwrap();
    let cancelled = karim
        .cancel_session(&workshop, Some("Salle indisponible"))
        .await
        .unwrap();
    assert_eq!(
        cancelled.cancel_reason.as_deref(),
        Some("Salle indisponible")
    );
}

#[tokio::test]
async fn server_refusals_keep_their_codes() {
    let (_server, _clock, backend) = devserver().await;
    let err = backend
        .login(LEA, &Secret::new("wrong"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            ApiError::Unauthorized {
                code: ErrorCode::InvalidCredentials,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_credentials");
    assert!(err.needs_sign_in());

    let lea = backend.login(LEA, &demo_password()).await.unwrap();
    let live = SessionId(seed::sessions::LIVE.to_string());
    let err = lea.start_session(&live).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Forbidden {
                code: ErrorCode::NotLeadTrainer,
                ..
            }
        ),
        "{err:?}"
    );
    let err = lea
        .join_session(&SessionId(seed::sessions::ENDED.to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Conflict {
                code: ErrorCode::SessionNotLive,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "session_not_live");
    let err = lea
        .live_session(&SessionId("404".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err:?}");
    // An id that looks like a path stays one segment.
    let err = lea
        .live_session(&SessionId("1/../../auth/login".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }), "{err:?}");
    let err = lea.attendance(&live).await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

#[derive(Default)]
struct RecordingSink(Mutex<Vec<String>>);

impl RefreshTokenSink for RecordingSink {
    fn refresh_token_rotated(&self, _user: &User, token: &Secret) -> BoxFuture {
        self.0.lock().unwrap().push(token.expose().to_owned());
        Box::pin(async {})
    }
}

#[tokio::test]
async fn expired_access_tokens_refresh_transparently() {
    let (_server, clock, backend) = devserver().await;
    let sink = Arc::new(RecordingSink::default());
    let lea = backend
        .login(LEA, &demo_password())
        .await
        .unwrap()
        .with_refresh_token_sink(sink.clone());
    let first_refresh = lea.refresh_token().await;

    // The server's clock jumps past the 15 min lifetime; the client's own estimate doesn't
    // know, so the call meets `token_expired`, refreshes and retries.
    clock.advance(Duration::from_secs(16 * 60));
    let clone = lea.clone();
    let (a, b) = tokio::join!(lea.live_sessions(), clone.me());
    assert_eq!(a.unwrap().len(), 6);
    assert_eq!(b.unwrap().email, LEA);

    let rotated = sink.0.lock().unwrap().clone();
    assert_eq!(rotated.len(), 1, "two concurrent calls, one refresh");
    assert_eq!(lea.refresh_token().await.expose(), rotated[0]);
    assert_ne!(first_refresh.expose(), rotated[0]);

    // A fresh client resumes from the newest token.
    let resumed = backend.resume(&lea.refresh_token().await).await.unwrap();
    assert_eq!(resumed.user().email, LEA);
}

#[tokio::test]
async fn an_ended_sign_in_asks_for_the_password() {
    let (_server, clock, backend) = devserver().await;
    let lea = backend.login(LEA, &demo_password()).await.unwrap();
    let stale = lea.refresh_token().await;
    lea.logout().await.unwrap();
    let err = lea.me().await.unwrap_err();
    assert!(err.needs_sign_in(), "{err:?}");
    let err = backend.resume(&stale).await.err().unwrap();
    assert_eq!(err.code(), "invalid_refresh_token");

    let lea = backend.login(LEA, &demo_password()).await.unwrap();
    clock.advance(Duration::from_secs(31 * 24 * 3600));
    let err = lea.live_sessions().await.unwrap_err();
    assert_eq!(err.code(), "invalid_refresh_token", "{err:?}");
}

#[tokio::test]
async fn an_unreachable_backend_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let backend =
        Backend::new(BackendUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap()).unwrap();
    let err = backend.login(LEA, &demo_password()).await.err().unwrap();
    assert!(matches!(err, ApiError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.code(), "unreachable");
    assert!(err.to_string().contains(&port.to_string()));
}

/// A server that answers every request with `response`, then closes.
async fn broken_server(response: Vec<u8>) -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Backend::new(BackendUrl::parse(&url).unwrap()).unwrap()
}

fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn broken_answers_are_typed_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            http("200 OK", "application/json", b"hello"),
            "malformed_response",
        ),
        (
            http("200 OK", "application/json", br#"{"access_token": 1}"#),
            "malformed_response",
        ),
        (
            http("502 Bad Gateway", "text/html", b"<h1>proxy</h1>"),
            "server_error",
        ),
        (
            http(
                "500 Internal Server Error",
                "application/json",
                br#"{"code":"internal","message":"x"}"#,
            ),
            "server_error",
        ),
        (http("418 I'm a teapot", "text/plain", b"no"), "rejected"),
        (
            http("401 Unauthorized", "text/html", b"<html>"),
            "unauthorized",
        ),
        (
            http(
                "429 Too Many Requests",
                "application/json",
                br#"{"code":"rate_limited","message":"slow down"}"#,
            ),
            "rejected",
        ),
        (http("302 Found", "text/plain", b""), "malformed_response"),
        (b"garbage that is not HTTP\r\n\r\n".to_vec(), "unreachable"),
    ];
    for (response, code) in cases {
        let preview = String::from_utf8_lossy(&response[..response.len().min(40)]).into_owned();
        let backend = broken_server(response).await;
        let err = backend.login(LEA, &demo_password()).await.err().unwrap();
        assert_eq!(err.code(), code, "{preview}: {err:?}");
    }
}

/// A token said to live for ever (`u64::MAX` seconds) signs in; it is refreshed within a
/// day like any other rather than overflowing the clock.
#[tokio::test]
async fn an_absurd_token_lifetime_is_capped() {
    let body = serde_json::json!({
        "access_token": "a",
        "refresh_token": "r",
        "token_type": "Bearer",
        "expires_in": u64::MAX,
        "user": {"id": "7", "name": "Léa", "email": LEA, "role": "student"},
    });
    let backend = broken_server(http(
        "200 OK",
        "application/json",
        body.to_string().as_bytes(),
    ))
    .await;
    let signed_in = backend.login(LEA, &demo_password()).await.unwrap();
    assert_eq!(signed_in.user().email, LEA);
}

#[tokio::test]
async fn an_endless_answer_is_cut_off() {
    let body = vec![b' '; 5 * 1024 * 1024];
    let backend = broken_server(http("200 OK", "application/json", &body)).await;
    let err = backend.login(LEA, &demo_password()).await.err().unwrap();
    assert!(
        matches!(err, ApiError::MalformedResponse(ref m) if m.contains("larger than")),
        "{err:?}"
    );
}
