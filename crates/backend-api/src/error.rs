use serde::{Deserialize, Serialize};

/// Every error the backend returns: `{"code": "...", "message": "..."}` with a 4xx/5xx status.
/// `code` is what programs branch on; `message` is for people and may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// The error codes of the contract. Unknown codes from a newer backend deserialize as
/// [`ErrorCode::Other`] so a client never fails to read an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON, missing or mistyped fields.
    InvalidRequest,
    /// 401: no `Authorization: Bearer` header.
    Unauthenticated,
    /// 401: the access token is unknown, revoked or malformed.
    InvalidToken,
    /// 401: the access token expired; refresh it.
    TokenExpired,
    /// 401: wrong email or password.
    InvalidCredentials,
    /// 401: the refresh token is unknown, revoked or expired; sign in again.
    InvalidRefreshToken,
    /// 403: only the lead trainer of the session may do this.
    NotLeadTrainer,
    /// 403: the user is not enrolled in the session's course.
    NotEnrolled,
    /// 403: the user's role may not do this.
    Forbidden,
    /// 404: unknown id, or a session the user may not see.
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409: the session is not live (scheduled, ended or cancelled).
    SessionNotLive,
    /// 409: the session is not scheduled any more (start/cancel).
    SessionNotScheduled,
    /// 409: the session reached its participant limit.
    SessionFull,
    /// 409: leave without a join.
    NotJoined,
    /// 413: request body over the limit.
    PayloadTooLarge,
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 500: the server failed; the message says nothing about why.
    Internal,
    /// A code this version does not know.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Every code of this version of the contract (all but [`ErrorCode::Other`]).
    pub const ALL: &'static [ErrorCode] = &[
        Self::InvalidRequest,
        Self::Unauthenticated,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::InvalidCredentials,
        Self::InvalidRefreshToken,
        Self::NotLeadTrainer,
        Self::NotEnrolled,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::SessionNotLive,
        Self::SessionNotScheduled,
        Self::SessionFull,
        Self::NotJoined,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Internal,
    ];

    /// The spelling on the wire, e.g. `"session_full"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::NotLeadTrainer => "not_lead_trainer",
            Self::NotEnrolled => "not_enrolled",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::SessionNotLive => "session_not_live",
            Self::SessionNotScheduled => "session_not_scheduled",
            Self::SessionFull => "session_full",
            Self::NotJoined => "not_joined",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal => "internal",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_are_kept_readable() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"rate_limited","message":"slow down"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Other);
        assert_eq!(body.message, "slow down");
    }

    #[test]
    fn as_str_matches_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_string(code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
