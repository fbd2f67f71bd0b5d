//! What the real-stack tests share: a devserver pointed at the test livekit-server, a join
//! grant for a demo user, and the signalling WebSocket opened with it.
#![allow(dead_code)] // each test file uses a different part

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use estrade_backend::api::{JoinResponse as Grant, SessionId};
use estrade_backend::{Backend, BackendUrl, Secret};
use estrade_devserver::{Config, RunningServer, seed};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub mod reconnect;
pub mod relay;

/// scripts/livekit.sh's server for the tests.
pub fn livekit_url() -> String {
    std::env::var("ESTRADE_LIVEKIT_URL").unwrap_or_else(|_| "ws://127.0.0.1:7880".into())
}

/// A devserver on an ephemeral port (demo data, in memory) and a client for it. Its LiveKit
/// rooms are its own (a unique prefix), so tests and earlier runs never meet in a room.
pub async fn devserver(config: Config) -> (RunningServer, Backend) {
    devserver_on(config, &livekit_url()).await
}

/// A devserver whose grants point at the livekit-server on `livekit_url`.
pub async fn devserver_on(config: Config, livekit_url: &str) -> (RunningServer, Backend) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let room_prefix = format!(
        "t{}-{}-{}-",
        unix_ms_now(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let server = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        livekit_url: livekit_url.to_owned(),
        room_prefix,
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

/// An HS256 LiveKit token signed with the test server's key, with the given claims: for
/// tokens the backend would never issue (expired, odd grants).
pub fn signed_livekit_token(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims.to_string().as_bytes());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").expect("any key length");
    mac.update(format!("{header}.{body}").as_bytes());
    format!("{header}.{body}.{}", b64(&mac.finalize().into_bytes()))
}

/// Media-heavy tests (several encoders and decoders, a Python peer) need both cores of a
/// small machine: within a test binary they take turns. Hold the guard for the whole test.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Waits (20 s at most) for the first event `pick` accepts; what came before it is shown if
/// it never comes.
pub async fn wait_for<T>(
    events: &mut estrade_engine::RoomEvents,
    what: &str,
    mut pick: impl FnMut(&estrade_engine::RoomEvent) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                if let Some(t) = pick(&e) {
                    return t;
                }
                seen.push(e);
            }
            Ok(None) => panic!("the room ended before {what}; saw {seen:#?}"),
            Err(_) => panic!("timed out waiting for {what}; saw {seen:#?}"),
        }
    }
}

/// The sid the server gave our own track, once it is published.
pub async fn own_track_published(
    events: &mut estrade_engine::RoomEvents,
    what: &str,
) -> estrade_engine::TrackSid {
    wait_for(events, what, |e| match e {
        estrade_engine::RoomEvent::Session(estrade_engine::SessionEvent::LocalTrackPublished {
            track,
            ..
        }) => Some(track.sid.clone()),
        _ => None,
    })
    .await
}

/// The median (upper middle), `NaN` for nothing: for the numbers the tests print.
pub fn p50(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Signs `email` in and joins the live demo session through the engine. Remote microphones
/// are analysed by `heard`, remote cameras by `seen` (neither: received, not decoded).
pub async fn join_room(
    backend: &Backend,
    email: &str,
    heard: Option<estrade_engine::PulseRecorder>,
    seen: Option<estrade_engine::FrameRecorder>,
) -> (
    estrade_engine::Room,
    estrade_engine::RoomEvents,
    estrade_engine::ParticipantIdentity,
) {
    let grant = join_grant(backend, email).await;
    let (room, events) = estrade_engine::join(estrade_engine::JoinOptions {
        url: grant.url,
        token: grant.token,
        audio_output: heard.map(|h| std::sync::Arc::new(h) as _),
        video_output: seen.map(|s| std::sync::Arc::new(s) as _),
    })
    .await
    .expect("join");
    (
        room,
        events,
        estrade_engine::ParticipantIdentity(grant.identity.0),
    )
}

/// A livekit-server of the test's own (scripts/livekit.sh on `port`), for tests that
/// kill and restart it. Stopped when dropped.
pub struct OwnLivekit {
    pub port: u16,
    /// The Redis of its cluster, if it is a node of one.
    redis: Option<String>,
}

impl OwnLivekit {
    pub fn start(port: u16) -> Self {
        let own = Self { port, redis: None };
        NetCut::lift_stale(port);
        own.run("start");
        own
    }

    /// A node of a cluster sharing `redis`.
    pub fn start_node(port: u16, redis: &OwnRedis) -> Self {
        let own = Self {
            port,
            redis: Some(format!("127.0.0.1:{}", redis.port)),
        };
        own.run("start");
        own
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A faulty network between every local client and this server (its ICE ports are
    /// `port + 1` for TCP and `port + 2` for UDP, as scripts/livekit.sh sets them).
    pub fn fault_relay(&self) -> estrade_netfault::FaultRelay {
        estrade_netfault::FaultRelay::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], self.port + 2)),
            self.port + 1,
        )
        .expect("the fault relay (nftables)")
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the server crashes, saying nothing to anyone.
    pub fn kill(&self) {
        self.run("kill");
    }

    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, action: &str) {
        let mut script = project_script("livekit.sh");
        script
            .arg(action)
            .env("ESTRADE_LIVEKIT_PORT", self.port.to_string());
        match &self.redis {
            Some(redis) => script.env("ESTRADE_LIVEKIT_REDIS", redis),
            None => script.env_remove("ESTRADE_LIVEKIT_REDIS"),
        };
        let status = script.status().expect("scripts/livekit.sh runs");
        assert!(status.success(), "scripts/livekit.sh {action} failed");
    }
}

/// One of the project's scripts, found at run time (the shared target dir may hold a
/// binary built from another clone).
fn project_script(name: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(format!(
            "{}/scripts/{name}",
            std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test")
        ))
        .stdout(Stdio::null());
    command
}

/// A Redis of the test's own (scripts/redis.sh on `port`). Stopped when dropped.
pub struct OwnRedis {
    pub port: u16,
}

impl OwnRedis {
    pub fn start(port: u16) -> Self {
        let own = Self { port };
        own.run("start");
        own
    }

    fn run(&self, action: &str) {
        let status = project_script("redis.sh")
            .arg(action)
            .env("ESTRADE_REDIS_PORT", self.port.to_string())
            .status()
            .expect("scripts/redis.sh runs");
        assert!(status.success(), "scripts/redis.sh {action} failed");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.run("stop");
    }
}

impl Drop for OwnLivekit {
    fn drop(&mut self) {
        self.run("stop");
    }
}

/// The venv scripts/setup.sh installs the SDK into.
pub fn python() -> String {
    let venv = std::env::var("ESTRADE_PY").unwrap_or_else(|_| {
        format!(
            "{}/.cache/estrade/py",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run scripts/setup.sh (it installs the LiveKit Python SDK)"
    );
    python
}

/// Starts tests/interop/peer.py as `grant`'s user (token in the environment); the handle
/// resolves to the JSON report it prints last, or fails the test with its output.
pub fn start_peer(
    grant: &estrade_backend::api::JoinResponse,
    args: &[&str],
) -> tokio::task::JoinHandle<serde_json::Value> {
    let peer = Command::new(python())
        // Found at run time: the shared target dir may hold a binary built from another clone.
        .arg(format!(
            "{}/tests/interop/peer.py",
            std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test")
        ))
        .args(args)
        .env("LK_URL", &grant.url)
        .env("LK_TOKEN", &grant.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Python peer starts");
    tokio::task::spawn_blocking(move || {
        let output = peer.wait_with_output().expect("the Python peer ran");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the Python peer failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("the peer's report ({e}): {stdout}"))
    })
}

/// A network cut between this machine's clients and one livekit-server of the test's own:
/// nftables drops every packet to and from its ports on loopback (signalling, ICE over UDP
/// and TCP), in a table of the test's own. Nothing is refused: the path just goes silent,
/// as when a train enters a tunnel. Lifted when dropped.
pub struct NetCut {
    table: String,
}

impl NetCut {
    pub fn start(livekit: &OwnLivekit) -> Self {
        let table = format!("estrade_cut_{}", livekit.port);
        let ports = format!(
            "{{ {}, {}, {} }}",
            livekit.port,
            livekit.port + 1,
            livekit.port + 2
        );
        let rules = format!(
            "table inet {table} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n  \
             iif lo tcp dport {ports} drop\n  iif lo tcp sport {ports} drop\n  \
             iif lo udp dport {ports} drop\n  iif lo udp sport {ports} drop\n }}\n}}\n"
        );
        nft(&["-f", "-"], Some(&rules));
        Self { table }
    }
}

impl NetCut {
    /// A cut left behind by a test run that was killed (its `Drop` never ran) would cut
    /// this run's server before it starts: lifted first, quietly.
    fn lift_stale(port: u16) {
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &format!("estrade_cut_{port}")])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for NetCut {
    fn drop(&mut self) {
        nft(&["delete", "table", "inet", &self.table], None);
    }
}

fn nft(args: &[&str], stdin: Option<&str>) {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft runs (scripts/setup.sh installs nftables)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "nft {args:?} failed");
}
