//! The signalling WebSocket: LiveKit's `/rtc` URL, the token in the Authorization header
//! (never in the URL, so it stays out of proxy logs), and upgrade failures as typed errors
//! carrying the server's reason.

use std::net::IpAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The protocol version we speak (livekit-server 1.13.5's current one).
const PROTOCOL: u32 = 17;
/// How long the TCP connect + TLS + upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Server reasons are short texts; a longer body is cut (and never logged in full).
const MAX_REASON: usize = 300;
/// The largest signal message we read. A JoinResponse for a class of 300 is ~150 kB;
/// tungstenite's default (64 MiB a message) is memory a server could make us hold.
pub(crate) const MAX_SIGNAL_MESSAGE: usize = 1 << 20;
/// What may wait to be written before sends fail rather than grow (our own messages are
/// small; this is reached only when the server stops reading).
const MAX_WRITE_BUFFER: usize = 4 << 20;

fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_SIGNAL_MESSAGE))
        .max_frame_size(Some(MAX_SIGNAL_MESSAGE))
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("the LiveKit address is not valid: {0}")]
    InvalidUrl(String),
    /// `ws://`/`http://` to anything but this machine.
    #[error("the LiveKit address must use TLS (wss:// or https://) unless it is on this machine")]
    TlsRequired,
    #[error("the LiveKit server refused the token: {reason}")]
    Unauthorized { reason: String },
    #[error("the token does not allow joining this room: {reason}")]
    Forbidden { reason: String },
    #[error("the LiveKit server does not know this room or path: {reason}")]
    NotFound { reason: String },
    #[error("the LiveKit server refused the connection (HTTP {status}): {reason}")]
    Rejected { status: u16, reason: String },
    #[error("the LiveKit server could not be reached: {0}")]
    Unreachable(String),
    #[error("the LiveKit server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the secure connection to the LiveKit server failed: {0}")]
    Tls(String),
}

/// `base` is what the backend hands out (`wss://host`, `https://host/prefix`, `ws://127.0.0.1:7880`).
pub(crate) fn rtc_url(base: &str) -> Result<Url, ConnectError> {
    let mut url = Url::parse(base.trim()).map_err(|e| ConnectError::InvalidUrl(e.to_string()))?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(ConnectError::InvalidUrl(format!(
                "unsupported scheme {other}"
            )));
        }
    };
    if scheme == "ws" && !is_loopback(&url) {
        return Err(ConnectError::TlsRequired);
    }
    url.set_scheme(scheme)
        .map_err(|()| ConnectError::InvalidUrl("cannot change the scheme".into()))?;
    if url.host_str().is_none() {
        return Err(ConnectError::InvalidUrl("no host".into()));
    }
    let path = format!("{}/rtc", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url.query_pairs_mut()
        .append_pair("protocol", &PROTOCOL.to_string())
        .append_pair("sdk", "rust")
        .append_pair("version", env!("CARGO_PKG_VERSION"))
        .append_pair("os", std::env::consts::OS)
        .append_pair("auto_subscribe", "1")
        .append_pair("adaptive_stream", "0");
    Ok(url)
}

/// Whether the server is on this machine (then plain `ws://` is fine and public STUN is useless).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The URL of a resume: the same, plus who we are and why we come back.
pub(crate) fn resume_url(url: &Url, sid: &str, reason: i32) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("reconnect", "1")
        .append_pair("sid", sid)
        .append_pair("reconnect_reason", &reason.to_string());
    url
}

pub(crate) async fn connect(url: &Url, token: &str) -> Result<Ws, ConnectError> {
    connect_within(url, token, CONNECT_TIMEOUT).await
}

/// Connects, giving up after `timeout` (a reconnect tries again soon rather than waiting
/// on a dead path).
pub(crate) async fn connect_within(
    url: &Url,
    token: &str,
    timeout: Duration,
) -> Result<Ws, ConnectError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?;
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ConnectError::Unauthorized {
            reason: "the token is not a valid header value".into(),
        }
    })?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, bearer);
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true);
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(ConnectError::Timeout(timeout)),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(upgrade_error(e, token)),
    }
}

fn upgrade_error(e: tungstenite::Error, token: &str) -> ConnectError {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let reason = reason_text(response.body().as_deref(), token);
            match status {
                401 => ConnectError::Unauthorized { reason },
                403 => ConnectError::Forbidden { reason },
                404 => ConnectError::NotFound { reason },
                _ => ConnectError::Rejected { status, reason },
            }
        }
        tungstenite::Error::Io(e) => ConnectError::Unreachable(e.to_string()),
        tungstenite::Error::Tls(e) => ConnectError::Tls(e.to_string()),
        other => ConnectError::Unreachable(other.to_string()),
    }
}

/// The server's reason as a short single-line text, with the token cut out should a server
/// ever echo it.
fn reason_text(body: Option<&[u8]>, token: &str) -> String {
    let text = String::from_utf8_lossy(body.unwrap_or_default());
    let mut text: String = text
        .replace(token, "<token>")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > MAX_REASON {
        let cut = (0..=MAX_REASON)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    if text.is_empty() {
        "no reason given".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt as _, StreamExt as _};

    use super::*;

    /// A server sending a message over the cap: the read fails with a capacity error
    /// (the session then ends as a lost signal), nothing of that size is buffered.
    #[tokio::test]
    async fn an_oversized_signal_message_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("ws://{}/rtc", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let small = tungstenite::Message::Binary(vec![1u8; 1000].into());
            ws.send(small).await.unwrap();
            let huge = tungstenite::Message::Binary(vec![0u8; MAX_SIGNAL_MESSAGE + 1].into());
            let _ = ws.send(huge).await;
            let _ = ws.flush().await;
        });
        let mut ws = connect(&url, "t").await.unwrap();
        assert!(
            matches!(ws.next().await, Some(Ok(tungstenite::Message::Binary(b))) if b.len() == 1000)
        );
        match ws.next().await {
            Some(Err(tungstenite::Error::Capacity(_))) => {}
            other => panic!("expected a capacity error, got {other:?}"),
        }
    }

    #[test]
    fn builds_the_rtc_url_from_what_the_backend_hands_out() {
        let u = rtc_url("ws://127.0.0.1:7880").unwrap();
        assert_eq!(u.path(), "/rtc");
        assert!(u.query().unwrap().contains("protocol=17&sdk=rust"));
        assert!(
            u.query()
                .unwrap()
                .contains("auto_subscribe=1&adaptive_stream=0")
        );
        assert_eq!(
            rtc_url("https://lk.example/prefix/")
                .unwrap()
                .as_str()
                .split('?')
                .next(),
            Some("wss://lk.example/prefix/rtc")
        );
        assert_eq!(rtc_url("http://localhost:7880").unwrap().scheme(), "ws");
        assert_eq!(rtc_url("ws://[::1]:7880").unwrap().scheme(), "ws");
    }

    #[test]
    fn plain_text_beyond_loopback_and_odd_urls_are_refused() {
        assert_eq!(rtc_url("ws://lk.example"), Err(ConnectError::TlsRequired));
        assert_eq!(
            rtc_url("http://10.0.0.2:7880"),
            Err(ConnectError::TlsRequired)
        );
        assert!(matches!(
            rtc_url("ftp://lk.example"),
            Err(ConnectError::InvalidUrl(_))
        ));
        assert!(matches!(
            rtc_url("not a url"),
            Err(ConnectError::InvalidUrl(_))
        ));
        assert!(matches!(rtc_url(""), Err(ConnectError::InvalidUrl(_))));
    }

    #[test]
    fn server_reasons_are_short_single_line_and_never_carry_the_token() {
        let r = reason_text(Some(b"invalid token: eyJabc\n expired"), "eyJabc");
        assert_eq!(r, "invalid token: <token> expired");
        assert_eq!(reason_text(None, "t"), "no reason given");
        let long = "é".repeat(400);
        let r = reason_text(Some(long.as_bytes()), "t");
        assert!(r.len() <= MAX_REASON + '…'.len_utf8());
        assert!(r.ends_with('…'));
        assert_eq!(
            reason_text(Some(&[0xff, 0xfe, b'x']), "t"),
            "\u{fffd}\u{fffd}x"
        );
    }
}
