//! Two Estrade clients in one room through the real livekit-server, with real WebRTC
//! (webrtc-rs behind crates/rtc): both PeerConnections connect over loopback ICE, and chat
//! goes both ways over the `_reliable` data channels as `lk.chat` text streams.

mod common;

use std::time::{Duration, Instant};

use common::{Ws, devserver, join_grant, open_signal, unix_ms_now};
use estrade_backend::Backend;
use estrade_devserver::{Config, seed};
use estrade_rtc::{ConnectionState, PeerConnections, RtcConfig, RtcEvent, Target};
use estrade_session::{RtcCommand, Session, SessionEvent, SignalTarget};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

fn target(t: SignalTarget) -> Target {
    match t {
        SignalTarget::Publisher => Target::Publisher,
        SignalTarget::Subscriber => Target::Subscriber,
    }
}

/// A client: socket, session state machine, PeerConnections — the engine's loop in miniature.
struct Client {
    ws: Ws,
    session: Session,
    pcs: PeerConnections,
    rtc_events: mpsc::Receiver<RtcEvent>,
    seen: Vec<SessionEvent>,
    connected: (bool, bool),
    /// Data waits in the session until `_reliable` is open.
    reliable_open: bool,
}

impl Client {
    async fn join(backend: &Backend, email: &str) -> Self {
        let grant = join_grant(backend, email).await;
        let (ws, _) = open_signal(&grant).await.expect("upgrade");
        let (tx, rtc_events) = mpsc::channel(256);
        // The server is on loopback: host candidates only, no public STUN.
        let pcs = PeerConnections::new(
            RtcConfig {
                ice_servers: vec![],
                allow_loopback: true,
            },
            tx,
        )
        .await
        .unwrap();
        let unix_ms = unix_ms_now();
        let mut client = Self {
            ws,
            session: Session::new(Instant::now(), unix_ms),
            pcs,
            rtc_events,
            seen: Vec::new(),
            connected: (false, false),
            reliable_open: false,
        };
        client
            .until("the JoinResponse", |_, e| {
                matches!(e, Some(SessionEvent::Joined { .. }))
            })
            .await;
        // The first publisher offer carries the data channels.
        let offer = client.pcs.create_publisher_offer().await.unwrap();
        client
            .session
            .publisher_offer(Instant::now(), offer)
            .unwrap();
        client
    }

    async fn step_rtc(&mut self) {
        while let Some(cmd) = self.session.poll_rtc() {
            match cmd {
                RtcCommand::ApplySubscriberOffer { id, sdp, .. } => {
                    let answer = self.pcs.answer_subscriber_offer(sdp).await.unwrap();
                    self.session
                        .remote_description_applied(SignalTarget::Subscriber);
                    self.session.subscriber_answer(id, answer);
                }
                RtcCommand::ApplyPublisherAnswer { sdp, .. } => {
                    self.pcs.apply_publisher_answer(sdp).await.unwrap();
                    self.session
                        .remote_description_applied(SignalTarget::Publisher);
                }
                RtcCommand::AddRemoteCandidate {
                    target: t,
                    candidate_init,
                } => {
                    self.pcs
                        .add_remote_candidate(target(t), &candidate_init)
                        .await
                        .unwrap();
                }
                RtcCommand::RenegotiatePublisher => {
                    let offer = self.pcs.create_publisher_offer().await.unwrap();
                    self.session.publisher_offer(Instant::now(), offer).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Runs the loop until `done` says so (it sees the client and each new event).
    async fn until(&mut self, what: &str, done: impl Fn(&Self, Option<&SessionEvent>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.step_rtc().await;
            while let Some(frame) = self.session.poll_transmit() {
                self.ws.send(Message::Binary(frame.into())).await.unwrap();
            }
            while self.reliable_open {
                let Some(data) = self.session.poll_data_transmit() else {
                    break;
                };
                self.pcs.send_reliable(data.into()).await.unwrap();
            }
            while let Some(e) = self.session.poll_event() {
                let hit = done(self, Some(&e));
                self.seen.push(e);
                if hit {
                    return;
                }
            }
            if done(self, None) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; saw {:?}",
                self.seen
            );
            let wake = self
                .session
                .poll_timeout()
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => self.session.handle_frame(Instant::now(), &b).expect("valid frames"),
                    Some(Ok(_)) => {}
                    other => panic!("socket ended while waiting for {what}: {other:?}"),
                },
                ev = self.rtc_events.recv() => match ev.expect("the PCs live as long as the client") {
                    RtcEvent::LocalCandidate { target: t, candidate_init } => {
                        let t = match t { Target::Publisher => SignalTarget::Publisher, Target::Subscriber => SignalTarget::Subscriber };
                        self.session.local_candidate(t, candidate_init);
                    }
                    RtcEvent::ConnectionStateChanged { target: t, state } => {
                        assert_ne!(state, ConnectionState::Failed, "{t:?} PeerConnection failed");
                        let up = state == ConnectionState::Connected;
                        match t { Target::Publisher => self.connected.0 |= up, Target::Subscriber => self.connected.1 |= up }
                    }
                    RtcEvent::DataChannelOpened { label } => self.reliable_open |= label == "_reliable",
                    RtcEvent::DataReceived { data, .. } => {
                        self.session.handle_data(Instant::now(), &data).expect("valid data packets");
                    }
                    _ => {}
                },
                _ = tokio::time::sleep_until(wake.into()) => self.session.handle_timeout(Instant::now()),
            }
        }
    }
}

fn chat_text(e: Option<&SessionEvent>) -> Option<&str> {
    match e {
        Some(SessionEvent::ChatReceived(m)) => Some(m.text.as_str()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn two_clients_connect_webrtc_and_chat_both_ways() {
    let (devserver, backend) = devserver(Config::default()).await;
    let mut trainer = Client::join(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let mut student = Client::join(&backend, "lea.dubois@estrade.example").await;

    let started = Instant::now();
    trainer
        .until("both PeerConnections", |c, _| c.connected == (true, true))
        .await;
    student
        .until("both PeerConnections", |c, _| c.connected == (true, true))
        .await;
    eprintln!(
        "both clients connected over WebRTC in {:?}",
        started.elapsed()
    );

    trainer
        .session
        .send_chat(Instant::now(), "msg-1", "Bienvenue ! Des questions ?")
        .unwrap();
    trainer
        .until("the send", |c, _| c.session.poll_timeout().is_some())
        .await;
    student
        .until("the trainer's chat", |_, e| {
            chat_text(e) == Some("Bienvenue ! Des questions ?")
        })
        .await;

    student
        .session
        .send_chat(Instant::now(), "msg-2", "Oui : la diapo 3 ✋")
        .unwrap();
    student
        .until("the send", |c, _| c.session.poll_timeout().is_some())
        .await;
    trainer
        .until("the student's chat", |_, e| {
            chat_text(e) == Some("Oui : la diapo 3 ✋")
        })
        .await;

    trainer.pcs.close().await;
    student.pcs.close().await;
    devserver.shutdown().await;
}
