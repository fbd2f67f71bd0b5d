//! Estrade's side of the backend contract (`docs/backend-api.md`) and the sign-in kept in
//! the OS keychain. No Tauri here: the desktop shell and the headless CLI both use it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use estrade_backend::{Backend, BackendUrl, Secret};
//! let backend = Backend::new(BackendUrl::parse("https://formation.example.org")?)?;
//! let signed_in = backend.login("claire@example.org", &Secret::new("…")).await?;
//! for session in signed_in.live_sessions().await? {
//!     println!("{} — {:?}", session.title, session.status);
//! }
//! # Ok(()) }
//! ```
//!
//! Access tokens refresh themselves: a call that meets an expired token refreshes once and
//! retries. Refresh tokens rotate, so whoever persists them registers a
//! [`RefreshTokenSink`] to hear about each new one.

mod account;
mod client;
mod error;
mod keychain;
mod secret;
mod url;

pub use account::{Account, AccountFile, AccountFileError};
pub use client::{Backend, BoxFuture, RefreshTokenSink, SignedIn};
pub use error::ApiError;
pub use estrade_backend_api as api;
pub use keychain::{Keychain, KeychainError};
pub use secret::Secret;
pub use url::{BackendUrl, UrlError};
