use std::time::Duration;

use estrade_backend_api::ErrorCode;

/// What a backend call can end in. The server's own `code` is kept wherever it sent one,
/// so callers (and the UI, through IPC) branch on codes, never on messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Nothing answered: DNS, refused connection, TLS failure.
    #[error("the backend at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
    /// 401: signed out, or the sign-in can no longer be refreshed.
    #[error("{message}")]
    Unauthorized { code: ErrorCode, message: String },
    /// 403, with the server's reason (`not_enrolled`, `not_lead_trainer`…).
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    #[error("{message}")]
    NotFound { code: ErrorCode, message: String },
    /// 409: the session's state forbids it (`session_not_live`, `session_full`…).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// Any other 4xx: the request itself was refused.
    #[error("the backend refused the request (HTTP {status}): {message}")]
    Rejected {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// 5xx.
    #[error("the backend failed (HTTP {status})")]
    Server { status: u16 },
    /// The answer did not follow the contract.
    #[error("the backend's answer does not follow the API contract: {0}")]
    MalformedResponse(String),
}

impl ApiError {
    /// A stable machine-readable code: the server's when it gave one, else the kind.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Rejected { code, .. } => match code {
                ErrorCode::Other => match self {
                    Self::Unauthorized { .. } => "unauthorized",
                    Self::Forbidden { .. } => "forbidden",
                    Self::NotFound { .. } => "not_found",
                    Self::Conflict { .. } => "conflict",
                    _ => "rejected",
                },
                c => c.as_str(),
            },
            Self::Server { .. } => "server_error",
            Self::MalformedResponse(_) => "malformed_response",
        }
    }

    /// True when only a new sign-in can help.
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }
}
