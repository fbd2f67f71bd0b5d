//! What the real-stack tests share: a devserver pointed at the test livekit-server, a join
//! grant for a demo user, and the signalling WebSocket opened with it.
#![allow(dead_code)] // each test file uses a different part

use std::time::{SystemTime, UNIX_EPOCH};

use estrade_backend::api::{JoinResponse as Grant, SessionId};
use estrade_backend::{Backend, BackendUrl, Secret};
use estrade_devserver::{Config, RunningServer, seed};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// scripts/livekit.sh's server for the tests.
pub fn livekit_url() -> String {
    std::env::var("ESTRADE_LIVEKIT_URL").unwrap_or_else(|_| "ws://127.0.0.1:7880".into())
}

/// A devserver on an ephemeral port (demo data, in memory) and a client for it.
pub async fn devserver(config: Config) -> (RunningServer, Backend) {
    let server = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        livekit_url: livekit_url(),
        ..config
    })
    .await
    .expect("devserver starts");
    let backend = Backend::new(BackendUrl::parse(&server.url()).unwrap()).unwrap();
    (server, backend)
}

/// Signs `email` in through the backend client and joins the live demo session.
pub async fn join_grant(backend: &Backend, email: &str) -> Grant {
    let user = backend
        .login(email, &Secret::new(seed::DEMO_PASSWORD))
        .await
        .expect("sign-in");
    user.join_session(&SessionId(seed::sessions::LIVE.to_string()))
        .await
        .expect("join grant")
}

/// Opens `/rtc` with the grant's token in the Authorization header (never in the URL).
pub async fn open_signal(grant: &Grant) -> Result<(Ws, Response), tungstenite::Error> {
    let url = format!(
        "{}/rtc?protocol=17&sdk=rust&auto_subscribe=1&adaptive_stream=0",
        grant.url
    );
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", grant.token)
            .parse()
            .expect("a JWT is a valid header value"),
    );
    tokio_tungstenite::connect_async(request).await
}

pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
