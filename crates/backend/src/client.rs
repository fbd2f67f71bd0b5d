//! Typed calls for every endpoint, with timeouts and transparent access-token refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use estrade_backend_api::{
    AttendanceRecord, CancelRequest, ErrorBody, ErrorCode, JoinResponse, LeaveResponse,
    LiveKitTokenRequest, LiveKitTokenResponse, LiveSession, LoginRequest, LogoutRequest,
    RefreshRequest, SessionId, TokenResponse, User,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::{ApiError, BackendUrl, Secret};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// No contract answer comes close; a larger one is a broken or hostile server.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// Refresh a little before expiry so a request never leaves with a dying token.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The longest an access token is trusted without a refresh, whatever the server says
/// (its `expires_in` is remote input: `u64::MAX` seconds must not overflow an `Instant`).
const MAX_ACCESS_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// When an access token said to live `expires_in` seconds from `now` is to be refreshed.
fn access_expiry(now: Instant, expires_in: u64) -> Instant {
    let lifetime = Duration::from_secs(expires_in).min(MAX_ACCESS_LIFETIME);
    now.checked_add(lifetime).unwrap_or(now)
}

/// An unauthenticated connection to one backend.
#[derive(Clone)]
pub struct Backend {
    http: reqwest::Client,
    base: BackendUrl,
}

impl Backend {
    pub fn new(base: BackendUrl) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect would carry the bearer token to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Estrade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable {
                url: base.to_string(),
                reason: format!("HTTP client setup failed: {e}"),
            })?;
        Ok(Self { http, base })
    }

    pub fn url(&self) -> &BackendUrl {
        &self.base
    }

    pub async fn login(&self, email: &str, password: &Secret) -> Result<SignedIn, ApiError> {
        let body = LoginRequest {
            email: email.trim().to_owned(),
            password: password.expose().to_owned(),
        };
        let tokens: TokenResponse = self
            .call(
                Method::POST,
                self.base.endpoint("api/auth/login"),
                Some(&body),
                None,
            )
            .await?;
        Ok(SignedIn::new(self.clone(), tokens))
    }

    /// Signs in again from a stored refresh token (which is then used up: store the new one).
    pub async fn resume(&self, refresh_token: &Secret) -> Result<SignedIn, ApiError> {
        let tokens = self.refresh(refresh_token).await?;
        Ok(SignedIn::new(self.clone(), tokens))
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenResponse, ApiError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.expose().to_owned(),
        };
        self.call(
            Method::POST,
            self.base.endpoint("api/auth/refresh"),
            Some(&body),
            None,
        )
        .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        bearer: Option<&Secret>,
    ) -> Result<T, ApiError> {
        let path = url.path().to_owned();
        let bytes = self.send(method, url, body, bearer).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedResponse(format!("{path}: {e}")))
    }

    /// Sends one request and returns the body of a 2xx answer, or the typed error.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
        bearer: Option<&Secret>,
    ) -> Result<Vec<u8>, ApiError> {
        let path = url.path().to_owned();
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            req = req.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let mut resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_error(e))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ApiError::MalformedResponse(format!(
                    "{path}: answer larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(bytes);
        }
        Err(error_from(status, &bytes))
    }

    fn transport_error(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout(REQUEST_TIMEOUT);
        }
        // reqwest's Display names the URL, which carries no secret; the source says why.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        ApiError::Unreachable {
            url: self.base.to_string(),
            reason,
        }
    }
}

fn error_from(status: StatusCode, bytes: &[u8]) -> ApiError {
    if status.is_server_error() {
        return ApiError::Server {
            status: status.as_u16(),
        };
    }
    // A proxy's HTML page has no code: keep the status, say what was expected.
    let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => (b.code, b.message),
        Err(_) => (
            ErrorCode::Other,
            format!("HTTP {} without a {{code, message}} body", status.as_u16()),
        ),
    };
    match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized { code, message },
        StatusCode::FORBIDDEN => ApiError::Forbidden { code, message },
        StatusCode::NOT_FOUND => ApiError::NotFound { code, message },
        StatusCode::CONFLICT => ApiError::Conflict { code, message },
        s if s.is_client_error() => ApiError::Rejected {
            status: s.as_u16(),
            code,
            message,
        },
        s => ApiError::MalformedResponse(format!("unexpected HTTP status {}", s.as_u16())),
    }
}

/// Told of every new refresh token, so a persisted sign-in follows the rotation.
///
/// The returned future is awaited before the next refresh can start, so rotations reach
/// the sink in order and the stored token is always the newest.
pub trait RefreshTokenSink: Send + Sync + 'static {
    fn refresh_token_rotated(&self, user: &User, refresh_token: &Secret) -> BoxFuture;
}

pub type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

struct Tokens {
    access: Secret,
    refresh: Secret,
    access_expires: Instant,
}

/// A signed-in user: every authenticated call. Cheap to clone; clones share the tokens.
#[derive(Clone)]
pub struct SignedIn {
    backend: Backend,
    user: User,
    tokens: Arc<Mutex<Tokens>>,
    sink: Option<Arc<dyn RefreshTokenSink>>,
}

impl SignedIn {
    fn new(backend: Backend, t: TokenResponse) -> Self {
        Self {
            backend,
            user: t.user,
            tokens: Arc::new(Mutex::new(Tokens {
                access: Secret::new(t.access_token),
                refresh: Secret::new(t.refresh_token),
                access_expires: access_expiry(Instant::now(), t.expires_in),
            })),
            sink: None,
        }
    }

    /// Registers who persists rotated refresh tokens (the keychain, in the app).
    pub fn with_refresh_token_sink(mut self, sink: Arc<dyn RefreshTokenSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The current refresh token, to persist a sign-in.
    pub async fn refresh_token(&self) -> Secret {
        self.tokens.lock().await.refresh.clone()
    }

    pub async fn me(&self) -> Result<User, ApiError> {
        self.call(
            Method::GET,
            self.backend.base.endpoint("api/me"),
            None::<&()>,
        )
        .await
    }

    pub async fn live_sessions(&self) -> Result<Vec<LiveSession>, ApiError> {
        self.call(
            Method::GET,
            self.backend.base.endpoint("api/live-sessions"),
            None::<&()>,
        )
        .await
    }

    pub async fn live_session(&self, id: &SessionId) -> Result<LiveSession, ApiError> {
        self.call(Method::GET, self.session_url(id, None), None::<&()>)
            .await
    }

    /// Lead trainer only: `scheduled → live`.
    pub async fn start_session(&self, id: &SessionId) -> Result<LiveSession, ApiError> {
        self.call(
            Method::POST,
            self.session_url(id, Some("start")),
            None::<&()>,
        )
        .await
    }

    /// Lead trainer only: `live → ended`.
    pub async fn end_session(&self, id: &SessionId) -> Result<LiveSession, ApiError> {
        self.call(Method::POST, self.session_url(id, Some("end")), None::<&()>)
            .await
    }

    /// Lead trainer only: `scheduled → cancelled`.
    pub async fn cancel_session(
        &self,
        id: &SessionId,
        reason: Option<&str>,
    ) -> Result<LiveSession, ApiError> {
        let body = CancelRequest {
            reason: reason.map(str::to_owned),
        };
        self.call(
            Method::POST,
            self.session_url(id, Some("cancel")),
            Some(&body),
        )
        .await
    }

    /// The LiveKit URL and token for the session's room; records attendance.
    pub async fn join_session(&self, id: &SessionId) -> Result<JoinResponse, ApiError> {
        self.call(
            Method::POST,
            self.session_url(id, Some("join")),
            None::<&()>,
        )
        .await
    }

    pub async fn leave_session(&self, id: &SessionId) -> Result<LeaveResponse, ApiError> {
        self.call(
            Method::POST,
            self.session_url(id, Some("leave")),
            None::<&()>,
        )
        .await
    }

    /// Trainers of the session only.
    pub async fn attendance(&self, id: &SessionId) -> Result<Vec<AttendanceRecord>, ApiError> {
        self.call(
            Method::GET,
            self.session_url(id, Some("attendance")),
            None::<&()>,
        )
        .await
    }

    /// Seed-001 compatible: a LiveKit token for a session room by name.
    pub async fn livekit_token(&self, room_name: &str) -> Result<LiveKitTokenResponse, ApiError> {
        let body = LiveKitTokenRequest {
            room_name: room_name.to_owned(),
        };
        self.call(
            Method::POST,
            self.backend.base.endpoint("api/livekit/token"),
            Some(&body),
        )
        .await
    }

    /// Revokes this sign-in on the server. The tokens are useless afterwards either way.
    pub async fn logout(&self) -> Result<(), ApiError> {
        let (access, refresh) = {
            let t = self.tokens.lock().await;
            (t.access.clone(), t.refresh.clone())
        };
        let body = LogoutRequest {
            refresh_token: Some(refresh.expose().to_owned()),
        };
        match self
            .backend
            .send(
                Method::POST,
                self.backend.base.endpoint("api/auth/logout"),
                Some(&body),
                Some(&access),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already expired or revoked: signed out is what was asked for.
            Err(ApiError::Unauthorized { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let access = self.fresh_access_token().await?;
        match self
            .backend
            .call(method.clone(), url.clone(), body, Some(&access))
            .await
        {
            Err(ApiError::Unauthorized {
                code: ErrorCode::TokenExpired,
                ..
            }) => {
                // Expired earlier than we counted (clock skew, server-side change): once more.
                let access = self.refresh_after(&access).await?;
                self.backend.call(method, url, body, Some(&access)).await
            }
            other => other,
        }
    }

    /// `api/live-sessions/{id}[/{action}]`. Ids are opaque: pushed as one escaped path
    /// segment, so an id can never turn into another path.
    fn session_url(&self, id: &SessionId, action: Option<&str>) -> url::Url {
        let mut url = self.backend.base.endpoint("api/live-sessions");
        {
            let mut segments = url
                .path_segments_mut()
                .expect("http(s) URLs have path segments");
            segments.push(&id.0);
            if let Some(action) = action {
                segments.push(action);
            }
        }
        url
    }

    async fn fresh_access_token(&self) -> Result<Secret, ApiError> {
        let (access, expires) = {
            let t = self.tokens.lock().await;
            (t.access.clone(), t.access_expires)
        };
        if Instant::now() + EXPIRY_MARGIN < expires {
            return Ok(access);
        }
        self.refresh_after(&access).await
    }

    /// Refreshes unless another task already replaced `stale`; one refresh at a time, so a
    /// rotated refresh token is never presented twice.
    async fn refresh_after(&self, stale: &Secret) -> Result<Secret, ApiError> {
        let mut t = self.tokens.lock().await;
        if &t.access != stale {
            return Ok(t.access.clone());
        }
        let fresh = self.backend.refresh(&t.refresh).await?;
        t.access = Secret::new(fresh.access_token);
        t.refresh = Secret::new(fresh.refresh_token);
        t.access_expires = access_expiry(Instant::now(), fresh.expires_in);
        if let Some(sink) = &self.sink {
            sink.refresh_token_rotated(&fresh.user, &t.refresh).await;
        }
        Ok(t.access.clone())
    }
}
