//! Errors cross IPC as `{code, message}`: the UI branches on `code` and shows its own
//! translated text, falling back to `message`.

use estrade_backend::{AccountFileError, ApiError, KeychainError, UrlError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl IpcError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn not_signed_in() -> Self {
        Self::new("not_signed_in", "sign in first")
    }
}

impl From<ApiError> for IpcError {
    fn from(e: ApiError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<UrlError> for IpcError {
    fn from(e: UrlError) -> Self {
        let code = match e {
            UrlError::InsecureRemote => "insecure_backend_url",
            _ => "invalid_backend_url",
        };
        Self::new(code, e.to_string())
    }
}

impl From<KeychainError> for IpcError {
    fn from(e: KeychainError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<AccountFileError> for IpcError {
    fn from(e: AccountFileError) -> Self {
        Self::new("settings_io", e.to_string())
    }
}
