//! Which account to sign back into at start: the backend URL and the email, in a small
//! JSON file of the app's. Not secret; the token itself stays in the keychain.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BackendUrl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub backend: BackendUrl,
    pub email: String,
}

impl Account {
    pub fn new(backend: BackendUrl, email: &str) -> Self {
        Self {
            backend,
            email: email.trim().to_lowercase(),
        }
    }

    /// The keychain account name: backend URL and email, so two backends never share one.
    pub fn keychain_account(&self) -> String {
        format!("{} {}", self.backend, self.email)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountFileError {
    #[error("could not read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    backend_url: String,
    email: String,
}

/// The remembered account, if any.
#[derive(Debug, Clone)]
pub struct AccountFile {
    path: PathBuf,
}

impl AccountFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A missing or unreadable file means "no remembered account": it is only a hint, and a
    /// damaged one must not stop the app from starting. The damage is logged.
    pub fn load(&self) -> Option<Account> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the remembered account");
                return None;
            }
        };
        let parsed = serde_json::from_slice::<Stored>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                BackendUrl::parse(&s.backend_url)
                    .map(|url| Account::new(url, &s.email))
                    .map_err(|e| e.to_string())
            });
        match parsed {
            Ok(account) => Some(account),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "ignoring a damaged remembered-account file");
                None
            }
        }
    }

    pub fn save(&self, account: &Account) -> Result<(), AccountFileError> {
        let io = |source| AccountFileError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let json = serde_json::to_vec_pretty(&Stored {
            backend_url: account.backend.to_string(),
            email: account.email.clone(),
        })
        .expect("two strings always serialize");
        // Write then rename: a crash never leaves half a file.
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn clear(&self) -> Result<(), AccountFileError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AccountFileError::Io {
                path: self.path.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let file = AccountFile::new(dir.path().join("sub/account.json"));
        assert_eq!(file.load(), None);
        let acc = Account::new(
            BackendUrl::parse("http://127.0.0.1:8787").unwrap(),
            " Claire@Example.org ",
        );
        file.save(&acc).unwrap();
        assert_eq!(file.load(), Some(acc.clone()));
        assert_eq!(
            acc.keychain_account(),
            "http://127.0.0.1:8787 claire@example.org"
        );
        std::fs::write(file.path(), b"{not json").unwrap();
        assert_eq!(file.load(), None);
        std::fs::write(
            file.path(),
            br#"{"backend_url":"http://evil.example","email":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            file.load(),
            None,
            "an insecure URL is refused even from our own file"
        );
        file.clear().unwrap();
        file.clear().unwrap();
        assert_eq!(file.load(), None);
    }
}
