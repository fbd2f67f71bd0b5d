//! `POST /api/livekit/token`, kept for the seed-001 clients: a token for a session room by
//! name, under the same rules as a join but without touching attendance.

use axum::extract::State;
use estrade_backend_api::{ErrorCode, LiveKitTokenRequest, LiveKitTokenResponse, SessionStatus};

use crate::AppState;
use crate::auth::AuthUser;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;

pub async fn token(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<LiveKitTokenRequest>,
) -> ApiResult<axum::Json<LiveKitTokenResponse>> {
    let room = req.room_name.trim();
    if room.is_empty() || room.len() > 256 {
        return Err(ApiError::bad_request(
            "room_name must be 1 to 256 characters",
        ));
    }
    let conn = state.conn()?;
    let s = db::session_by_room(&conn, room)?.ok_or_else(|| ApiError::not_found("room"))?;
    let role = db::role_in(&conn, &s, auth.user.id)?.ok_or_else(|| {
        ApiError::forbidden(
            ErrorCode::NotEnrolled,
            "you are not enrolled in this session's course",
        )
    })?;
    super::sessions::require_status(&s, SessionStatus::Live, "a token")?;
    let token = super::livekit_token(&state, &auth.user, &s, role)?;
    Ok(axum::Json(LiveKitTokenResponse {
        token,
        url: state.config.livekit_url.clone(),
        room_name: s.room_name,
    }))
}
