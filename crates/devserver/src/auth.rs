//! Passwords (argon2id) and bearer tokens.
//!
//! Access and refresh tokens are 256-bit random strings; only their SHA-256 is stored, so
//! a copy of the database cannot be replayed. Clients treat them as opaque.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use estrade_backend_api::ErrorCode;
use rand::RngCore as _;
use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::db::{self, UserRow};
use crate::error::ApiError;

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a valid salt")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to compare against when the email is unknown, so both failures cost the same.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password"))
}

pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed-in user of a request, from `Authorization: Bearer <access token>`.
pub struct AuthUser {
    pub user: UserRow,
    pub token_hash: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                ErrorCode::Unauthenticated,
                "missing Authorization: Bearer header",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 512)
            .ok_or_else(|| {
                ApiError::unauthorized(ErrorCode::InvalidToken, "malformed Authorization header")
            })?;
        let hash = token_hash(token);
        let now = db::ts(state.config.clock.now());
        let conn = state.conn()?;
        let row: Option<(i64, i64, bool)> = conn
            .query_row(
                "SELECT user_id, expires_at, revoked FROM access_tokens WHERE token_hash = ?1",
                params![hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (user_id, expires_at, revoked) = row.ok_or_else(invalid_token)?;
        if revoked {
            return Err(invalid_token());
        }
        if now >= expires_at {
            return Err(ApiError::unauthorized(
                ErrorCode::TokenExpired,
                "the access token expired; refresh it",
            ));
        }
        let user = db::user_by_id(&conn, user_id)?.ok_or_else(invalid_token)?;
        Ok(AuthUser {
            user,
            token_hash: hash,
        })
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized(ErrorCode::InvalidToken, "the access token is not valid")
}
