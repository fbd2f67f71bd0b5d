//! The backend's base URL. TLS is required except on loopback, where the demo stack runs.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendUrl(url::Url);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("the backend URL must start with https:// (or http:// on this computer only)")]
    UnsupportedScheme,
    #[error("http:// is only allowed for localhost; use https://")]
    InsecureRemote,
    #[error("the backend URL must not carry a user, password, query or fragment")]
    UnexpectedParts,
}

impl BackendUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let mut url = url::Url::parse(raw.trim()).map_err(|e| UrlError::Invalid(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(UrlError::InsecureRemote),
            _ => return Err(UrlError::UnsupportedScheme),
        }
        if url.host().is_none() {
            return Err(UrlError::Invalid("no host".into()));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(UrlError::UnexpectedParts);
        }
        // A base path is allowed (a backend behind /lms/); `join` needs it to end in '/'.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    /// `api/live-sessions` → `https://host/base/api/live-sessions`
    pub(crate) fn endpoint(&self, path: &str) -> url::Url {
        self.0
            .join(path)
            .expect("relative API paths always join onto a base URL")
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert!(BackendUrl::parse("https://lms.example.org").is_ok());
        assert!(BackendUrl::parse("http://127.0.0.1:8787").is_ok());
        assert!(BackendUrl::parse("http://localhost:8787/").is_ok());
        assert!(BackendUrl::parse("http://[::1]:8787").is_ok());
        assert_eq!(
            BackendUrl::parse("http://lms.example.org"),
            Err(UrlError::InsecureRemote)
        );
        assert_eq!(
            BackendUrl::parse("http://10.0.0.2"),
            Err(UrlError::InsecureRemote)
        );
        assert_eq!(
            BackendUrl::parse("ftp://x.org"),
            Err(UrlError::UnsupportedScheme)
        );
        assert!(matches!(
            BackendUrl::parse("not a url"),
            Err(UrlError::Invalid(_))
        ));
        assert_eq!(
            BackendUrl::parse("https://u:p@x.org"),
            Err(UrlError::UnexpectedParts)
        );
        assert_eq!(
            BackendUrl::parse("https://x.org/?a=1"),
            Err(UrlError::UnexpectedParts)
        );
    }

    #[test]
    fn endpoints_keep_a_base_path() {
        let u = BackendUrl::parse("https://x.org/lms").unwrap();
        assert_eq!(u.endpoint("api/me").as_str(), "https://x.org/lms/api/me");
        assert_eq!(u.to_string(), "https://x.org/lms");
        let u = BackendUrl::parse("http://127.0.0.1:8787/").unwrap();
        assert_eq!(
            u.endpoint("api/me").as_str(),
            "http://127.0.0.1:8787/api/me"
        );
        assert_eq!(u.to_string(), "http://127.0.0.1:8787");
    }
}
