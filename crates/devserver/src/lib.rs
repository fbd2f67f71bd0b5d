//! `devserver`: Estrade's reference backend.
//!
//! It implements the API contract of `docs/backend-api.md` on an embedded SQLite database,
//! seeded with demo users, courses and sessions, and mints LiveKit access tokens for the
//! session rooms. The desktop app uses it in demo mode and in tests; an organization's own
//! backend follows the same contract.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = estrade_devserver::Config::default();
//! let server = estrade_devserver::spawn(config).await?;
//! println!("listening on http://{}", server.addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
pub mod clock;
mod db;
mod error;
pub mod grants;
mod json;
mod routes;
pub mod seed;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
pub use clock::{Clock, ManualClock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Everything the server can be told by flags or environment.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Where clients connect to LiveKit, returned in join answers (`ws://` only on loopback).
    pub livekit_url: String,
    pub livekit_api_key: String,
    pub livekit_api_secret: String,
    /// `None`: an in-memory database, gone at exit.
    pub database: Option<PathBuf>,
    /// Seed the demo data when the database is empty.
    pub seed_demo_data: bool,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Lifetime of LiveKit tokens: 2 h, as the organization's backends do.
    pub livekit_token_ttl: Duration,
    pub clock: Arc<dyn Clock>,
    /// Put before the seeded LiveKit room names, so test runs sharing one livekit-server
    /// get rooms of their own.
    pub room_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8787)),
            livekit_url: "ws://127.0.0.1:7880".into(),
            livekit_api_key: "devkey".into(),
            livekit_api_secret: "secret".into(),
            database: None,
            seed_demo_data: true,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            livekit_token_ttl: Duration::from_secs(2 * 3600),
            clock: Arc::new(SystemClock),
            room_prefix: String::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("livekit_url", &self.livekit_url)
            .field("livekit_api_key", &self.livekit_api_key)
            .field("livekit_api_secret", &"[redacted]")
            .field("database", &self.database)
            .field("seed_demo_data", &self.seed_demo_data)
            .finish_non_exhaustive()
    }
}

/// Shared by all handlers. The connection is behind a plain mutex: every query is short
/// and none is held across an `.await`.
#[derive(Clone)]
pub(crate) struct AppState {
    pub db: Arc<Mutex<rusqlite::Connection>>,
    pub config: Arc<Config>,
}

impl AppState {
    /// The database connection, for the length of one handler step (never across `.await`).
    pub(crate) fn conn(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, rusqlite::Connection>, error::ApiError> {
        self.db.lock().map_err(|_| {
            tracing::error!("the database mutex is poisoned");
            error::ApiError::internal()
        })
    }
}

/// A server running on a tokio task.
pub struct RunningServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Opens (and if needed creates and seeds) the database, binds, and serves in the background.
pub async fn spawn(config: Config) -> anyhow::Result<RunningServer> {
    let conn = db::open(config.database.as_deref()).context("opening the database")?;
    if config.seed_demo_data {
        let seeded =
            seed::seed_if_empty(&conn, config.clock.now()).context("seeding the demo data")?;
        if seeded && !config.room_prefix.is_empty() {
            conn.execute(
                "UPDATE live_sessions SET room_name = ?1 || room_name",
                [&config.room_prefix],
            )
            .context("prefixing the room names")?;
        }
    }
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let state = AppState {
        db: Arc::new(Mutex::new(conn)),
        config: Arc::new(config),
    };
    let app = routes::router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningServer { addr, stop, task })
}
