//! `devserver`: run Estrade's reference backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Estrade's reference backend: the documented API on SQLite, minting LiveKit tokens.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on. Plain HTTP: keep it on loopback or put TLS in front.
    #[arg(long, env = "ESTRADE_DEVSERVER_BIND", default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// LiveKit URL handed to clients.
    #[arg(long, env = "LIVEKIT_URL", default_value = "ws://127.0.0.1:7880")]
    livekit_url: String,
    #[arg(long, env = "LIVEKIT_API_KEY", default_value = "devkey")]
    livekit_api_key: String,
    /// Read from the environment rather than a flag, so it stays out of `ps`.
    #[arg(
        long,
        env = "LIVEKIT_API_SECRET",
        default_value = "secret",
        hide_env_values = true
    )]
    livekit_api_secret: String,
    /// SQLite database file; in memory when absent.
    #[arg(long, env = "ESTRADE_DEVSERVER_DB")]
    database: Option<PathBuf>,
    /// Do not seed the demo data into an empty database.
    #[arg(long)]
    no_seed: bool,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 900)]
    access_ttl: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "estrade_devserver=info,tower_http=warn".into()),
        )
        .init();
    let args = Args::parse();
    let config = estrade_devserver::Config {
        bind: args.bind,
        livekit_url: args.livekit_url,
        livekit_api_key: args.livekit_api_key,
        livekit_api_secret: args.livekit_api_secret,
        database: args.database,
        seed_demo_data: !args.no_seed,
        access_token_ttl: Duration::from_secs(args.access_ttl),
        ..Default::default()
    };
    if !config.bind.ip().is_loopback() {
        tracing::warn!(bind = %config.bind, "serving plain HTTP beyond loopback; clients will refuse it without TLS in front");
    }
    let server = estrade_devserver::spawn(config).await?;
    tracing::info!(url = %server.url(), "devserver ready");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
