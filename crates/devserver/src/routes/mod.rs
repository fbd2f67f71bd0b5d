mod auth;
mod livekit;
mod sessions;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use estrade_backend_api::ErrorCode;
use tower_http::catch_panic::CatchPanicLayer;

use crate::AppState;
use crate::error::ApiError;

/// Requests carry a few small JSON fields; anything larger is refused before parsing.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/me", get(auth::me))
        .route("/api/live-sessions", get(sessions::list))
        .route("/api/live-sessions/{id}", get(sessions::get_one))
        .route("/api/live-sessions/{id}/start", post(sessions::start))
        .route("/api/live-sessions/{id}/end", post(sessions::end))
        .route("/api/live-sessions/{id}/cancel", post(sessions::cancel))
        .route("/api/live-sessions/{id}/join", post(sessions::join))
        .route("/api/live-sessions/{id}/leave", post(sessions::leave))
        .route(
            "/api/live-sessions/{id}/attendance",
            get(sessions::attendance),
        )
        .route("/api/livekit/token", post(livekit::token))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse as _;
                tracing::error!("a request handler panicked");
                ApiError::internal().into_response()
            },
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// Ids are opaque strings on the wire and integers here: anything else is unknown.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| ApiError::not_found(what))
}

/// A LiveKit token for `user` in the room of `session`, with the grants of `role`.
pub(crate) fn livekit_token(
    state: &AppState,
    user: &crate::db::UserRow,
    session: &crate::db::SessionRow,
    role: estrade_backend_api::SessionRole,
) -> Result<String, ApiError> {
    crate::grants::mint(crate::grants::TokenRequest {
        api_key: &state.config.livekit_api_key,
        api_secret: &state.config.livekit_api_secret,
        identity: &user.id.to_string(),
        name: &user.name,
        room: &session.room_name,
        role,
        ttl: state.config.livekit_token_ttl,
    })
    .map(|m| m.jwt)
    .map_err(|e| {
        tracing::error!(error = %e, "minting a LiveKit token");
        ApiError::internal()
    })
}
