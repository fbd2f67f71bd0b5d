//! A TCP relay of our own between a client and livekit-server's signalling port, to cut
//! the signalling connection (and refuse new ones) on demand while media keeps its path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpRelay {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Bumped on every cut: connections of an older generation close.
    generation: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpRelay {
    /// Relays 127.0.0.1:<ephemeral> to `target`.
    pub async fn to(target: SocketAddr) -> Self {
        Self::failover(vec![target]).await
    }

    /// A load balancer in front of a cluster: each connection goes to the first of
    /// `targets` that accepts it.
    pub async fn failover(targets: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (gate, cuts) = (Arc::clone(&open), generation.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    // Refused: the client's upgrade finds the connection closed.
                    drop(inbound);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let targets = targets.clone();
                tokio::spawn(async move {
                    let mut outbound = None;
                    for target in targets {
                        if let Ok(stream) = TcpStream::connect(target).await {
                            outbound = Some(stream);
                            break;
                        }
                    }
                    let Some(mut outbound) = outbound else { return };
                    let mut inbound = inbound;
                    // A cut closes both sides: the client reads the end of its stream.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            open,
            generation,
            accept,
        }
    }

    /// Drops every relayed connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// The relay's address as a LiveKit URL.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
