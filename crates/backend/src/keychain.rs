//! The sign-in kept in the OS keychain: the refresh token only, under service `estrade` and
//! account `<backend URL> <email>`. Nothing secret is ever written to a file.
//!
//! The platform stores (Secret Service, Keychain Services, Credential Manager) are blocking
//! APIs; every call runs on tokio's blocking pool.

use std::sync::Arc;

use crate::client::{BoxFuture, RefreshTokenSink};
use crate::{Account, Secret};

pub const SERVICE: &str = "estrade";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeychainError {
    /// No keychain on this system (no Secret Service on the session bus, for instance).
    #[error("the system keychain is not available: {0}")]
    Unavailable(String),
    /// The keychain is there but refused or failed (locked, denied, corrupt entry).
    #[error("the system keychain refused the operation: {0}")]
    Access(String),
}

impl KeychainError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "keychain_unavailable",
            Self::Access(_) => "keychain_error",
        }
    }
}

impl From<keyring::Error> for KeychainError {
    fn from(e: keyring::Error) -> Self {
        match e {
            keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => {
                Self::Unavailable(e.to_string())
            }
            keyring::Error::NoDefaultStore => Self::Unavailable(e.to_string()),
            other => Self::Access(other.to_string()),
        }
    }
}

/// The keychain, under one service name (tests use their own so they never touch a real
/// user's sign-in).
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Self::new()
    }
}

impl Keychain {
    pub fn new() -> Self {
        Self::with_service(SERVICE)
    }

    pub fn with_service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub async fn store(
        &self,
        account: &Account,
        refresh_token: &Secret,
    ) -> Result<(), KeychainError> {
        let token = refresh_token.clone();
        Ok(self
            .run(account, move |e| e.set_password(token.expose()))
            .await??)
    }

    /// `Ok(None)` when nothing is stored for the account.
    pub async fn load(&self, account: &Account) -> Result<Option<Secret>, KeychainError> {
        match self.run(account, |e| e.get_password()).await? {
            Ok(token) => Ok(Some(Secret::new(token))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deleting what is not there succeeds: signed out is signed out.
    pub async fn delete(&self, account: &Account) -> Result<(), KeychainError> {
        match self.run(account, |e| e.delete_credential()).await? {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` on the account's entry on the blocking pool. The outer error is the task
    /// failing; the inner one is the keychain's answer.
    async fn run<T: Send + 'static>(
        &self,
        account: &Account,
        op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, KeychainError> {
        let service = self.service.clone();
        let user = account.keychain_account();
        tokio::task::spawn_blocking(move || {
            keyring::Entry::new(&service, &user).and_then(|entry| op(&entry))
        })
        .await
        .map_err(|e| KeychainError::Access(format!("keychain task failed: {e}")))
    }
}

/// Keeps the keychain entry of one account on the newest refresh token.
pub struct KeychainSink {
    keychain: Keychain,
    account: Account,
}

impl Keychain {
    /// A [`RefreshTokenSink`] that stores each rotated token for `account`.
    pub fn sink(&self, account: Account) -> Arc<dyn RefreshTokenSink> {
        Arc::new(KeychainSink {
            keychain: self.clone(),
            account,
        })
    }
}

impl RefreshTokenSink for KeychainSink {
    fn refresh_token_rotated(
        &self,
        _user: &estrade_backend_api::User,
        refresh_token: &Secret,
    ) -> BoxFuture {
        let keychain = self.keychain.clone();
        let account = self.account.clone();
        let token = refresh_token.clone();
        Box::pin(async move {
            // The sign-in in memory goes on working; only the next start would ask for the
            // password again. Say so, without the token.
            if let Err(e) = keychain.store(&account, &token).await {
                tracing::warn!(account = %account.keychain_account(), error = %e, "could not keep the rotated sign-in in the keychain");
            }
        })
    }
}
