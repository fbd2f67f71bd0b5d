//! The CLI's secrets: the backend password, a LiveKit token, the LiveKit API secret.
//!
//! They come from the environment only. A command line is readable by every local user
//! (`ps`, `/proc/PID/cmdline`) and kept by shell history, so a secret flag is refused
//! outright rather than ignored: a script that passes one learns at once. Once read, the
//! variables are removed from the environment so that nothing this process starts
//! inherits them and no library reads them later. On Linux the value is also overwritten
//! where the kernel keeps the environment the process started with: `/proc/PID/environ`
//! (and a core dump) would show it otherwise for the whole session.

use std::ffi::OsString;
use std::fmt;

use estrade_backend::Secret;

/// One of the CLI's secrets: where it is read from, and the flag it must not come as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretVar {
    Password,
    Token,
    ApiSecret,
}

impl SecretVar {
    pub const ALL: [Self; 3] = [Self::Password, Self::Token, Self::ApiSecret];

    pub fn env(self) -> &'static str {
        match self {
            Self::Password => "ESTRADE_PASSWORD",
            Self::Token => "ESTRADE_TOKEN",
            Self::ApiSecret => "ESTRADE_API_SECRET",
        }
    }

    /// The flag these secrets were once given with: recognised only to be refused.
    fn flag(self) -> &'static str {
        match self {
            Self::Password => "--password",
            Self::Token => "--token",
            Self::ApiSecret => "--api-secret",
        }
    }
}

/// The secrets read at start-up. `Debug` is safe: [`Secret`] prints as redacted.
#[derive(Debug, Default)]
pub struct Secrets {
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    pub api_secret: Option<Secret>,
}

/// Why the secrets could not be read. Never carries a secret's value.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretError {
    OnCommandLine(SecretVar),
    NotUnicode(SecretVar),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OnCommandLine(var) => write!(
                f,
                "{} is not taken on the command line (other users can read it there, and \
                 shell history keeps it): set {} instead",
                var.flag(),
                var.env()
            ),
            Self::NotUnicode(var) => write!(f, "{} is not valid UTF-8", var.env()),
        }
    }
}

impl std::error::Error for SecretError {}

/// Reads the secrets from the process environment and removes them from it.
///
/// # Safety
///
/// No other thread may exist (or read or write the environment) while this runs:
/// `std::env::remove_var` is not thread-safe on most platforms. Call it first thing in a
/// synchronous `main`, before any runtime or thread is started.
pub unsafe fn take_from_env() -> Result<Secrets, SecretError> {
    take(|name| {
        let value = std::env::var_os(name);
        // SAFETY: the caller guarantees this process has a single thread (see above).
        unsafe {
            scrub_initial_env(name);
            std::env::remove_var(name)
        };
        value
    })
}

/// Overwrites `name`'s value in place, in the block the process started with (what
/// `/proc/PID/environ` reads), before the variable is removed.
///
/// # Safety
///
/// Single-threaded, as [`take_from_env`]; and the variable was not set by this process
/// (then `getenv` points into the initial block, which is writable stack memory).
#[cfg(target_os = "linux")]
unsafe fn scrub_initial_env(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: a NUL-terminated name; the result is NULL or a NUL-terminated value in the
    // environment's storage, which nothing else reads or writes meanwhile (one thread).
    unsafe {
        let value = libc::getenv(name.as_ptr());
        if !value.is_null() {
            let len = libc::strlen(value);
            std::ptr::write_bytes(value, b'x', len);
        }
    }
}

#[cfg(not(target_os = "linux"))]
unsafe fn scrub_initial_env(_name: &str) {}

/// The secrets as `take_var` hands them over (each variable is asked for exactly once, and
/// is expected gone afterwards). Every variable is taken even if an earlier one is bad, so
/// none is left behind in the environment.
fn take(
    mut take_var: impl FnMut(&'static str) -> Option<OsString>,
) -> Result<Secrets, SecretError> {
    let [password, token, api_secret] = SecretVar::ALL.map(|var| (var, take_var(var.env())));
    let secret = |(var, value): (SecretVar, Option<OsString>)| match value {
        // Empty counts as unset: it cannot authenticate, and "set ESTRADE_…" is the useful
        // answer.
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => value
            .into_string()
            .map(|s| Some(Secret::new(s)))
            .map_err(|_| SecretError::NotUnicode(var)),
        None => Ok(None),
    };
    Ok(Secrets {
        password: secret(password)?,
        token: secret(token)?,
        api_secret: secret(api_secret)?,
    })
}

/// Refuses `--password`, `--token` and `--api-secret` (as `--flag value` or `--flag=value`)
/// anywhere before a `--`. Checked before clap parses, whose "unexpected argument" would
/// not say where the secret goes instead.
pub fn refuse_on_command_line(args: impl IntoIterator<Item = OsString>) -> Result<(), SecretError> {
    let args = args.into_iter().skip(1);
    for arg in args.take_while(|a| a != "--") {
        let Some(arg) = arg.to_str() else { continue };
        let given = |var: &SecretVar| {
            let flag = var.flag();
            arg.strip_prefix(flag)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        };
        if let Some(var) = SecretVar::ALL.into_iter().find(given) {
            return Err(SecretError::OnCommandLine(var));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("estrade-cli")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// A fake environment: `take` must read each variable and remove it.
    fn take_from(env: &mut HashMap<&'static str, OsString>) -> Result<Secrets, SecretError> {
        take(|name| env.remove(name))
    }

    #[test]
    fn secrets_are_taken_out_of_the_environment() {
        let mut env = HashMap::from([
            ("ESTRADE_PASSWORD", OsString::from("hunter2")),
            ("ESTRADE_TOKEN", OsString::from("tok-123")),
            ("ESTRADE_API_SECRET", OsString::from("api-456")),
        ]);
        let secrets = take_from(&mut env).unwrap();
        assert!(env.is_empty(), "left behind: {:?}", env.keys());
        assert_eq!(secrets.password.unwrap().expose(), "hunter2");
        assert_eq!(secrets.token.unwrap().expose(), "tok-123");
        assert_eq!(secrets.api_secret.unwrap().expose(), "api-456");
    }

    #[test]
    fn unset_and_empty_variables_are_no_secret() {
        let mut env = HashMap::from([("ESTRADE_TOKEN", OsString::new())]);
        let secrets = take_from(&mut env).unwrap();
        assert!(env.is_empty());
        assert!(secrets.password.is_none() && secrets.token.is_none());
        assert!(secrets.api_secret.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_bad_variable_is_named_not_shown_and_none_is_left_behind() {
        use std::os::unix::ffi::OsStringExt as _;
        let mut env = HashMap::from([
            (
                "ESTRADE_PASSWORD",
                OsString::from_vec(b"hunter2\xff".to_vec()),
            ),
            ("ESTRADE_API_SECRET", OsString::from("api-456")),
        ]);
        let error = take_from(&mut env).unwrap_err();
        assert_eq!(error, SecretError::NotUnicode(SecretVar::Password));
        assert_eq!(error.to_string(), "ESTRADE_PASSWORD is not valid UTF-8");
        assert!(env.is_empty(), "left behind: {:?}", env.keys());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secrets = Secrets {
            password: Some(Secret::new("hunter2")),
            token: Some(Secret::new("tok-123")),
            api_secret: Some(Secret::new("api-456")),
        };
        let debug = format!("{secrets:?} {secrets:#?}");
        for value in ["hunter2", "tok-123", "api-456"] {
            assert!(!debug.contains(value), "{debug}");
        }
        assert!(debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn secret_flags_are_refused_without_their_value() {
        for (args, var) in [
            (&["--password", "hunter2"][..], SecretVar::Password),
            (
                &["--email", "a@b.c", "--password=hunter2"],
                SecretVar::Password,
            ),
            (&["--url", "ws://x", "--token", "hunter2"], SecretVar::Token),
            (
                &["--api-key", "k", "--api-secret=hunter2"],
                SecretVar::ApiSecret,
            ),
        ] {
            let error = refuse_on_command_line(argv(args)).unwrap_err();
            assert_eq!(error, SecretError::OnCommandLine(var), "{args:?}");
            let message = error.to_string();
            assert!(message.contains(var.env()), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn other_flags_pass() {
        // Look-alikes, a value that only contains a flag's name, and anything after `--`.
        for args in [
            &["--url", "ws://x", "--api-key", "devkey", "--room", "r"][..],
            &["--say", "my --password is safe"],
            &["--say=--token"],
            &["--tokens"],
            &["--", "--password"],
        ] {
            assert_eq!(refuse_on_command_line(argv(args)), Ok(()), "{args:?}");
        }
    }
}
