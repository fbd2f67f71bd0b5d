//! A devserver on an ephemeral loopback port with an in-memory database and a manual
//! clock, and a small HTTP helper. Real HTTP, real SQLite, real argon2.
#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;

use chrono::Utc;
use estrade_devserver::{Config, ManualClock, RunningServer, seed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const CLAIRE: &str = "claire.martin@estrade.example"; // lead trainer of 1, 2, 4, 6; co-trainer of 3
pub const KARIM: &str = "karim.benali@estrade.example"; // co-trainer of 1; lead of 3 and 5
pub const LEA: &str = "lea.dubois@estrade.example"; // courses 1 and 2
pub const THOMAS: &str = "thomas.petit@estrade.example"; // course 1
pub const NADIA: &str = "nadia.roux@estrade.example"; // course 2 only

pub struct Harness {
    pub server: RunningServer,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// Asserts the contract's error shape and returns the code.
    #[track_caller]
    pub fn error_code(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        let code = self.body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code in {}", self.body));
        let message = self.body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {}", self.body));
        assert!(!message.is_empty());
        for leak in ["sqlite", "SQL", "panicked", "rusqlite", "/src/"] {
            assert!(
                !message.contains(leak),
                "internal detail {leak:?} leaked: {message}"
            );
        }
        code.to_owned()
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(
            self.status.is_success(),
            "expected success, got {}: {}",
            self.status,
            self.body
        );
        &self.body
    }
}

impl Harness {
    pub async fn start() -> Self {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            clock: clock.clone(),
            ..Config::default()
        };
        let server = estrade_devserver::spawn(config)
            .await
            .expect("devserver starts");
        Self {
            server,
            clock,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        Self::reply(resp).await
    }

    pub async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "non-JSON body for {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str) -> Reply {
        self.request(Method::POST, path, Some(token), None).await
    }

    pub async fn login_reply(&self, email: &str, password: &str) -> Reply {
        self.request(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": email, "password": password })),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.request(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh_token })),
        )
        .await
    }

    /// Signs in a demo user; returns the access token.
    pub async fn login(&self, email: &str) -> String {
        let r = self.login_reply(email, seed::DEMO_PASSWORD).await;
        r.ok()["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    pub async fn user_id(&self, token: &str) -> String {
        self.get("/api/me", token).await.ok()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
