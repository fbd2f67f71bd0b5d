//! The backend API contract (`docs/backend-api.md`, `docs/openapi.yaml`) as Rust types.
//!
//! Both sides use these types: the desktop client (`estrade-backend`) and the reference
//! backend (`estrade-devserver`), so a field renamed on one side breaks the other at compile
//! time. An organization's own backend (Django, FastAPI…) follows the documents instead.
//!
//! Identifiers are opaque strings: the organization's backend may use integers, UUIDs or
//! anything else, and the client never interprets them.

mod error;

pub use error::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A user of the organization. Also the LiveKit participant identity.
    UserId
);
string_id!(
    /// A live session (one scheduled class).
    SessionId
);
string_id!(
    /// A course, which groups sessions and holds the enrollments.
    CourseId
);

/// An organization-wide role, as the backend's user directory knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Trainer,
    Student,
    Admin,
}

/// The user's role within one live session; it decides the LiveKit grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionRole {
    /// The lead trainer: voice, camera, screen share, moderation.
    Trainer,
    /// Streams a camera and speaks.
    CoTrainer,
    /// Watches, listens, speaks when allowed, chats.
    Student,
}

/// `scheduled → live → ended`, or `scheduled → cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Scheduled,
    Live,
    Ended,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub email: String,
    pub role: UserRole,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: [redacted] }")
    }
}

/// `POST /api/auth/logout`: the refresh token to revoke along with the access token.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct LogoutRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Answer to a login or a refresh. Refresh tokens rotate: the previous one is revoked.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub user: User,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("user", &self.user)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseSummary {
    pub id: CourseId,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSummary {
    pub id: UserId,
    pub name: String,
}

/// A session as one user sees it (`my_role` is theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSession {
    pub id: SessionId,
    pub title: String,
    pub course: CourseSummary,
    pub description: String,
    pub lead_trainer: PersonSummary,
    /// RFC 3339, UTC.
    pub scheduled_start: String,
    pub scheduled_end: String,
    pub actual_start: Option<String>,
    pub actual_end: Option<String>,
    pub status: SessionStatus,
    pub cancel_reason: Option<String>,
    pub my_role: SessionRole,
    /// People in the room right now (joined and not left).
    pub participant_count: u32,
    pub max_participants: u32,
}

/// `POST /api/live-sessions/{id}/cancel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a client needs to connect to the LiveKit room of a session.
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinResponse {
    /// LiveKit access token (HS256 JWT), valid until `expires_at`.
    pub token: String,
    /// LiveKit signalling URL (`wss://…`, or `ws://` on loopback).
    pub url: String,
    pub room_name: String,
    /// The LiveKit participant identity: the user id.
    pub identity: UserId,
    pub role: SessionRole,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

impl std::fmt::Debug for JoinResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinResponse")
            .field("token", &"[redacted]")
            .field("url", &self.url)
            .field("room_name", &self.room_name)
            .field("identity", &self.identity)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `POST /api/live-sessions/{id}/leave`: the attendance record just closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveResponse {
    pub joined_at: String,
    pub left_at: String,
    /// This stay, in seconds.
    pub duration_seconds: u64,
    /// All stays in this session, in seconds.
    pub total_seconds: u64,
}

/// One line of `GET /api/live-sessions/{id}/attendance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRecord {
    pub user: PersonSummary,
    pub role: SessionRole,
    pub first_joined_at: String,
    pub last_joined_at: String,
    pub left_at: Option<String>,
    pub present: bool,
    pub total_seconds: u64,
}

/// `POST /api/livekit/token` (seed 001 compatibility).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveKitTokenRequest {
    pub room_name: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct LiveKitTokenResponse {
    pub token: String,
    pub url: String,
    pub room_name: String,
}

impl std::fmt::Debug for LiveKitTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitTokenResponse")
            .field("token", &"[redacted]")
            .field("url", &self.url)
            .field("room_name", &self.room_name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_use_the_documented_spelling() {
        assert_eq!(
            serde_json::to_string(&SessionRole::CoTrainer).unwrap(),
            "\"co_trainer\""
        );
        assert_eq!(
            serde_json::to_string(&SessionStatus::Cancelled).unwrap(),
            "\"cancelled\""
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let login = LoginRequest {
            email: "a@b.c".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
        let refresh = RefreshRequest {
            refresh_token: "rt-secret".into(),
        };
        assert!(!format!("{refresh:?}").contains("rt-secret"));
    }
}
