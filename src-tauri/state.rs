use std::path::PathBuf;
use std::sync::Mutex;

use estrade_backend::{Account, AccountFile, BackendUrl, Keychain, SignedIn};
use tokio::sync::RwLock;

use crate::launch::{AutoSignIn, Launch};

/// The app's state: who is signed in, and where a sign-in is remembered.
pub struct AppState {
    pub keychain: Keychain,
    /// The remembered backend URL and email (not secret).
    pub account_file: AccountFile,
    pub launch_backend_url: Option<BackendUrl>,
    /// Taken by the first `restore_session`.
    pub auto_sign_in: Mutex<Option<AutoSignIn>>,
    pub current: RwLock<Option<Current>>,
}

pub struct Current {
    pub signed_in: SignedIn,
    pub account: Account,
    /// The refresh token is in the keychain (and follows its rotation).
    pub remembered: bool,
}

impl AppState {
    pub fn new(config_dir: PathBuf, launch: Launch) -> Self {
        Self {
            keychain: Keychain::new(),
            account_file: AccountFile::new(config_dir.join("account.json")),
            launch_backend_url: launch.backend_url,
            auto_sign_in: Mutex::new(launch.auto_sign_in),
            current: RwLock::new(None),
        }
    }
}
