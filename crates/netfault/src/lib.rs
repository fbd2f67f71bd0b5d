//! `estrade-netfault`: a faulty network between local WebRTC clients and a local SFU, for
//! the fault tests and the fault bench. This kernel has no `netem`, so delay, jitter, loss
//! and a rate cap are applied by a small UDP relay of our own.
//!
//! How packets get here: an nftables rule redirects (DNAT) every UDP packet a local
//! process sends to the SFU's ICE port into the relay, which forwards it from 127.0.0.2
//! (a source the rule lets through) and sends the answers back; conntrack makes them look
//! like the server's, so ICE sees nothing but a worse network. Any client library is
//! affected alike (our engine, libwebrtc in the Python SDK, a browser). No client slips
//! around it: the server's own packets to anyone but the relay are dropped (its
//! connectivity checks would otherwise open a flow conntrack does not redirect), and ICE
//! over TCP to the server is refused while the relay runs.
//!
//! Processes running with group [`SLOW_GID`] get a link of their own ([`Class::Slow`]):
//! a student on a poor connection while the rest of the class is on a good one.
//!
//! Needs root (nftables); Linux only. Not for the product: a test tool.

mod impair;

pub use impair::{Direction, Fate, Impairment, Link, QUEUE_LIMIT, Random};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The group whose processes get the [`Class::Slow`] link (`Command::gid`; a root child
/// keeps its uid, so it still reads everything).
pub const SLOW_GID: u32 = 4242;

/// Which clients a link applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Every client not in the slow group.
    Everyone = 0,
    /// Clients in processes of group [`SLOW_GID`].
    Slow = 1,
}

/// Packets seen in one direction of one class since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub forwarded: u64,
    pub lost: u64,
    pub overflowed: u64,
}

/// The running relay and its nftables rules; both go when it is dropped.
pub struct FaultRelay {
    shared: Arc<Shared>,
    table: String,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    links: Mutex<[Link; 2]>,
    server: SocketAddr,
    queue: Mutex<BinaryHeap<Reverse<Due>>>,
    due: Condvar,
    stop: AtomicBool,
    /// [class][up, down][forwarded, lost, overflowed]
    counts: [[[AtomicU64; 3]; 2]; 2],
}

struct Due {
    at: Instant,
    order: u64,
    bytes: Vec<u8>,
    socket: Arc<UdpSocket>,
    /// `None`: the socket is connected (to the server).
    to: Option<SocketAddr>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

impl FaultRelay {
    /// Starts relaying every local client's UDP to `server_ice` (the SFU's ICE port on
    /// 127.0.0.1), with clean links until [`FaultRelay::set`]; refuses TCP to `server_tcp`
    /// (its ICE/TCP port). Start it before the clients join: a flow conntrack already
    /// knows keeps going straight to the server.
    pub fn start(server_ice: SocketAddr, server_tcp: u16) -> io::Result<Self> {
        let table = format!("estrade_fault_{}", server_ice.port());
        let _ = nft(&["delete", "table", "ip", &table], None);
        let shared = Arc::new(Shared {
            links: Mutex::new([Link::CLEAN; 2]),
            server: server_ice,
            queue: Mutex::new(BinaryHeap::new()),
            due: Condvar::new(),
            stop: AtomicBool::new(false),
            counts: Default::default(),
        });
        let mut ports = Vec::new();
        let mut threads = Vec::new();
        for class in [Class::Everyone, Class::Slow] {
            let listen = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
            listen.set_read_timeout(Some(POLL))?;
            ports.push(listen.local_addr()?.port());
            let shared = Arc::clone(&shared);
            threads.push(spawn("estrade-netfault-in", move || {
                from_clients(&shared, class, &listen)
            })?);
        }
        let scheduler = Arc::clone(&shared);
        threads.push(spawn("estrade-netfault-out", move || {
            send_when_due(&scheduler)
        })?);
        let (ice, everyone, slow) = (server_ice.port(), ports[0], ports[1]);
        let rules = format!(
            "table ip {table} {{\n\
             chain out {{\n type nat hook output priority -100; policy accept;\n  \
             ip daddr 127.0.0.1 udp dport {ice} ip saddr != 127.0.0.2 meta skgid {SLOW_GID} dnat to 127.0.0.1:{slow}\n  \
             ip daddr 127.0.0.1 udp dport {ice} ip saddr != 127.0.0.2 dnat to 127.0.0.1:{everyone}\n }}\n\
             chain server {{\n type filter hook output priority 0; policy accept;\n  \
             udp sport {ice} ip daddr != 127.0.0.2 drop\n }}\n\
             chain in {{\n type filter hook input priority 0; policy accept;\n  \
             tcp dport {server_tcp} tcp flags syn reject with tcp reset\n }}\n}}\n"
        );
        let relay = Self {
            shared,
            table,
            threads,
        };
        nft(&["-f", "-"], Some(&rules))?;
        Ok(relay)
    }

    /// Changes the link of `class` from now on (packets already in flight keep theirs).
    pub fn set(&self, class: Class, link: Link) {
        lock(&self.shared.links)[class as usize] = link;
    }

    /// Packets of `class` so far: (up, down).
    pub fn counts(&self, class: Class) -> (Counts, Counts) {
        let read = |d: usize| {
            let c = &self.shared.counts[class as usize][d];
            Counts {
                forwarded: c[0].load(Ordering::Relaxed),
                lost: c[1].load(Ordering::Relaxed),
                overflowed: c[2].load(Ordering::Relaxed),
            }
        };
        (read(0), read(1))
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        let _ = nft(&["delete", "table", "ip", &self.table], None);
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.due.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn link(&self, class: Class) -> Link {
        lock(&self.links)[class as usize]
    }

    /// Applies `impairment` to one packet and queues it (or counts it lost).
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        class: Class,
        up: bool,
        path: &mut Direction,
        random: &mut Random,
        bytes: &[u8],
        socket: &Arc<UdpSocket>,
        to: Option<SocketAddr>,
        order: &mut u64,
    ) {
        let link = self.link(class);
        let impairment = if up { link.up } else { link.down };
        let counts = &self.counts[class as usize][usize::from(!up)];
        let now = Instant::now();
        let at = match path.admit(&impairment, bytes.len(), now, random) {
            Fate::Deliver(at) => at,
            Fate::Lost => {
                counts[1].fetch_add(1, Ordering::Relaxed);
                return;
            }
            Fate::Overflowed => {
                counts[2].fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        counts[0].fetch_add(1, Ordering::Relaxed);
        if at <= now {
            let _ = match to {
                Some(to) => socket.send_to(bytes, to),
                None => socket.send(bytes),
            };
            return;
        }
        *order += 1;
        lock(&self.queue).push(Reverse(Due {
            at,
            order: *order * 2 + u64::from(up),
            bytes: bytes.to_vec(),
            socket: Arc::clone(socket),
            to,
        }));
        self.due.notify_one();
    }
}

/// Packets from clients of `class` (redirected to `listen`), each client through a socket
/// of its own towards the server.
fn from_clients(shared: &Arc<Shared>, class: Class, listen: &Arc<UdpSocket>) {
    struct Client {
        upstream: Arc<UdpSocket>,
        path: Direction,
    }
    let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
    let mut random = Random::seeded(0x5eed ^ class as u64);
    let mut order = 0;
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = listen.recv_from(&mut buf) else {
            continue;
        };
        let client = match clients.entry(from) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                let Ok(upstream) = upstream_for(shared, class, listen, from) else {
                    continue;
                };
                new.insert(Client {
                    upstream,
                    path: Direction::default(),
                })
            }
        };
        let upstream = Arc::clone(&client.upstream);
        shared.pass(
            class,
            true,
            &mut client.path,
            &mut random,
            &buf[..n],
            &upstream,
            None,
            &mut order,
        );
    }
}

/// A socket towards the server for the client at `client`, and a thread bringing the
/// server's packets back to it.
fn upstream_for(
    shared: &Arc<Shared>,
    class: Class,
    listen: &Arc<UdpSocket>,
    client: SocketAddr,
) -> io::Result<Arc<UdpSocket>> {
    let upstream = Arc::new(UdpSocket::bind("127.0.0.2:0")?);
    upstream.connect(shared.server)?;
    upstream.set_read_timeout(Some(POLL))?;
    let (shared, listen, reader) = (
        Arc::clone(shared),
        Arc::clone(listen),
        Arc::clone(&upstream),
    );
    // Detached: it ends with the stop flag, at most POLL after the relay is dropped.
    spawn("estrade-netfault-back", move || {
        let mut path = Direction::default();
        let mut random = Random::seeded(u64::from(client.port()) << 8 | class as u64);
        let mut order = 0;
        let mut buf = vec![0u8; 65_536];
        while !shared.stop.load(Ordering::Relaxed) {
            let Ok(n) = reader.recv(&mut buf) else {
                continue;
            };
            shared.pass(
                class,
                false,
                &mut path,
                &mut random,
                &buf[..n],
                &listen,
                Some(client),
                &mut order,
            );
        }
    })?;
    Ok(upstream)
}

fn send_when_due(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match queue.peek() {
            Some(Reverse(next)) if next.at <= now => {
                let Reverse(due) = queue.pop().expect("peeked");
                drop(queue);
                let _ = match due.to {
                    Some(to) => due.socket.send_to(&due.bytes, to),
                    None => due.socket.send(&due.bytes),
                };
                queue = lock(&shared.queue);
            }
            Some(Reverse(next)) => {
                let wait = next.at - now;
                queue = shared
                    .due
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            None => {
                queue = shared
                    .due
                    .wait_timeout(queue, POLL)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn nft(args: &[&str], stdin: Option<&str>) -> io::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stderr(if stdin.is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())?;
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("nft {args:?}: {status}")))
    }
}
