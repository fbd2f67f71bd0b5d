//! How the app was started: `--backend-url URL` prefills the sign-in form, and with
//! `--email EMAIL` plus the password in `ESTRADE_PASSWORD` it signs in by itself (the demo
//! and the desktop tests use this). The password is read once and removed from the
//! environment; it is never logged.

use estrade_backend::{BackendUrl, Secret, UrlError};

#[derive(Debug, Default)]
pub struct Launch {
    pub backend_url: Option<BackendUrl>,
    pub auto_sign_in: Option<AutoSignIn>,
}

#[derive(Debug)]
pub struct AutoSignIn {
    pub email: String,
    pub password: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("--backend-url: {0}")]
    BackendUrl(#[from] UrlError),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("unknown argument {0:?} (known: --backend-url URL, --email EMAIL)")]
    Unknown(String),
    #[error("--email needs --backend-url and the password in ESTRADE_PASSWORD")]
    IncompleteSignIn,
}

impl Launch {
    pub fn from_env() -> Result<Self, LaunchError> {
        let password = std::env::var("ESTRADE_PASSWORD").ok().map(Secret::new);
        // SAFETY: called first thing in `run`, before any thread is started.
        unsafe { std::env::remove_var("ESTRADE_PASSWORD") };
        Self::parse(std::env::args().skip(1), password)
    }

    fn parse(
        mut args: impl Iterator<Item = String>,
        password: Option<Secret>,
    ) -> Result<Self, LaunchError> {
        let mut backend_url = None;
        let mut email = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--backend-url" => {
                    let v = args
                        .next()
                        .ok_or(LaunchError::MissingValue("--backend-url"))?;
                    backend_url = Some(BackendUrl::parse(&v)?);
                }
                "--email" => email = Some(args.next().ok_or(LaunchError::MissingValue("--email"))?),
                other => return Err(LaunchError::Unknown(other.to_owned())),
            }
        }
        let auto_sign_in = match (email, password) {
            (Some(email), Some(password)) if backend_url.is_some() => {
                Some(AutoSignIn { email, password })
            }
            (Some(_), _) => return Err(LaunchError::IncompleteSignIn),
            (None, _) => None,
        };
        Ok(Self {
            backend_url,
            auto_sign_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_the_automation_flags() {
        let l = Launch::parse(
            args(&["--backend-url", "http://127.0.0.1:8787", "--email", "a@b.c"]),
            Some(Secret::new("pw")),
        )
        .unwrap();
        assert_eq!(l.backend_url.unwrap().to_string(), "http://127.0.0.1:8787");
        assert_eq!(l.auto_sign_in.unwrap().email, "a@b.c");
        assert!(
            Launch::parse(args(&[]), None)
                .unwrap()
                .auto_sign_in
                .is_none()
        );
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        assert!(matches!(
            Launch::parse(args(&["--email", "a@b.c"]), Some(Secret::new("pw"))),
            Err(LaunchError::IncompleteSignIn)
        ));
        assert!(matches!(
            Launch::parse(args(&["--backend-url", "http://example.org"]), None),
            Err(LaunchError::BackendUrl(UrlError::InsecureRemote))
        ));
        assert!(matches!(
            Launch::parse(args(&["--nope"]), None),
            Err(LaunchError::Unknown(_))
        ));
    }
}
