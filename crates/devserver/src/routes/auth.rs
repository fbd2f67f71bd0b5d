use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use estrade_backend_api::{
    ErrorCode, LoginRequest, LogoutRequest, RefreshRequest, TokenResponse, User, UserId, UserRole,
};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::AppState;
use crate::auth::{self, AuthUser};
use crate::db::{self, UserRow};
use crate::error::{ApiError, ApiResult};
use crate::json::Json;

const MAX_EMAIL: usize = 320;
const MAX_PASSWORD: usize = 1024;

pub fn user_json(u: &UserRow) -> User {
    User {
        id: UserId(u.id.to_string()),
        name: u.name.clone(),
        email: u.email.clone(),
        role: match u.role.as_str() {
            "trainer" => UserRole::Trainer,
            "admin" => UserRole::Admin,
            _ => UserRole::Student,
        },
    }
}

pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let email = req.email.trim().to_owned();
    if email.is_empty() || email.len() > MAX_EMAIL || req.password.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(
            "email must be 1 to 320 characters, password at most 1024",
        ));
    }
    let found = {
        let conn = state.conn()?;
        db::user_by_email(&conn, &email)?
    };
    // Hashing is CPU-bound: off the async workers. Unknown emails cost the same time.
    let password = req.password;
    let (user, ok) = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) => {
            let ok = auth::verify_password(&password, &hash);
            (Some(user), ok)
        }
        None => {
            auth::verify_password(&password, auth::dummy_hash());
            (None, false)
        }
    })
    .await?;
    let user = match (user, ok) {
        (Some(u), true) => u,
        _ => {
            return Err(ApiError::unauthorized(
                ErrorCode::InvalidCredentials,
                "wrong email or password",
            ));
        }
    };
    let conn = state.conn()?;
    Ok(axum::Json(issue_tokens(&conn, &state, &user)?))
}

pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let hash = auth::token_hash(req.refresh_token.trim());
    let now = db::ts(state.config.clock.now());
    let conn = state.conn()?;
    let row: Option<(i64, i64, bool)> = conn
        .query_row(
            "SELECT user_id, expires_at, revoked FROM refresh_tokens WHERE token_hash = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let invalid = || {
        ApiError::unauthorized(
            ErrorCode::InvalidRefreshToken,
            "the refresh token is not valid; sign in again",
        )
    };
    let (user_id, expires_at, revoked) = row.ok_or_else(invalid)?;
    if revoked {
        // A rotated token came back: someone holds a copy. End every sign-in of this user.
        tracing::warn!(
            user_id,
            "revoked refresh token reused; revoking all of the user's tokens"
        );
        conn.execute(
            "UPDATE refresh_tokens SET revoked = 1 WHERE user_id = ?1",
            [user_id],
        )?;
        conn.execute(
            "UPDATE access_tokens SET revoked = 1 WHERE user_id = ?1",
            [user_id],
        )?;
        return Err(invalid());
    }
    if now >= expires_at {
        return Err(invalid());
    }
    conn.execute(
        "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?1",
        [&hash],
    )?;
    let user = db::user_by_id(&conn, user_id)?.ok_or_else(invalid)?;
    Ok(axum::Json(issue_tokens(&conn, &state, &user)?))
}

/// The body is optional: `{}`, `{"refresh_token": "..."}` or nothing.
pub async fn logout(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad_request("the body is not a valid logout request"))?
    };
    let conn = state.conn()?;
    conn.execute(
        "UPDATE access_tokens SET revoked = 1 WHERE token_hash = ?1",
        [&auth.token_hash],
    )?;
    if let Some(rt) = req.refresh_token {
        conn.execute(
            "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?1 AND user_id = ?2",
            params![auth::token_hash(rt.trim()), auth.user.id],
        )?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(auth: AuthUser) -> axum::Json<User> {
    axum::Json(user_json(&auth.user))
}

fn issue_tokens(conn: &Connection, state: &AppState, user: &UserRow) -> ApiResult<TokenResponse> {
    let now = state.config.clock.now();
    let expiry = |ttl: Duration| db::ts(now) + ttl.as_secs() as i64;
    let access = auth::new_token("at_");
    let refresh = auth::new_token("rt_");
    conn.execute(
        "INSERT INTO access_tokens (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![
            auth::token_hash(&access),
            user.id,
            expiry(state.config.access_token_ttl)
        ],
    )?;
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![
            auth::token_hash(&refresh),
            user.id,
            expiry(state.config.refresh_token_ttl)
        ],
    )?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.config.access_token_ttl.as_secs(),
        user: user_json(user),
    })
}
