//! A scripted LiveKit server and WebRTC layer around one [`Session`], on simulated time
//! (quinn's `Pair`): every reconnection path runs as a fast, deterministic test. The server
//! keeps what a real one keeps (who is connected, published tracks, the last reliable
//! sequence it got) and answers as livekit-server v1.13 does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use livekit_protocol as lk;
use lk::signal_request::Message as Req;
use lk::signal_response::Message as Resp;
use prost::Message as _;

use crate::reconnect::{ReconnectRequest, RtcSnapshot, SignalFailure};
use crate::wire::fake;
use crate::{RtcCommand, Session, SessionEvent, SessionState, SignalTarget};

pub(crate) const T0_MS: i64 = 1_790_000_000_000;

pub(crate) struct FakeServer {
    /// The other participants, as the server would list them.
    pub others: Vec<lk::ParticipantInfo>,
    /// The client's sid while the server has its session.
    pub client_sid: Option<String>,
    pub client_identity: String,
    next_sid: u32,
    next_track: u32,
    next_offer: u32,
    /// Everything the client sent, decoded, in order.
    pub received: Vec<Req>,
    /// Reliable sequences of the client's data packets, in arrival order (its requests for
    /// missed chat aside).
    pub data: Vec<u32>,
    /// Requests for missed chat the client sent.
    pub missed_requests: usize,
    /// Whether the network carries anything at all.
    pub network_up: bool,
    /// Whether the current signalling socket is open.
    socket_open: bool,
    /// New sockets are refused with 401.
    pub unauthorized: bool,
    /// Whether publisher offers get answers.
    pub answers_offers: bool,
    /// A draining server: every new socket is answered "reconnect elsewhere" (a
    /// LeaveRequest with action RECONNECT).
    pub sends_away: bool,
    /// A moderator removed the client: a resume is answered with a removal.
    pub removed: bool,
    /// The client's published tracks, as the server lists them.
    client_tracks: Vec<lk::TrackInfo>,
    outbox: VecDeque<Vec<u8>>,
}

impl FakeServer {
    fn new() -> Self {
        Self {
            others: Vec::new(),
            client_sid: None,
            client_identity: "1".into(),
            next_sid: 0,
            next_track: 0,
            next_offer: 0,
            received: Vec::new(),
            data: Vec::new(),
            missed_requests: 0,
            network_up: true,
            socket_open: false,
            unauthorized: false,
            answers_offers: true,
            sends_away: false,
            removed: false,
            client_tracks: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    fn new_sid(&mut self) -> String {
        self.next_sid += 1;
        format!("PA_me{}", self.next_sid)
    }

    fn local_info(&self) -> lk::ParticipantInfo {
        let mut me = fake::participant(
            self.client_sid.as_deref().unwrap_or_default(),
            &self.client_identity,
            1,
        );
        if let Some(p) = me.permission.as_mut() {
            p.can_publish_sources.push(lk::TrackSource::Camera as i32);
        }
        me.tracks = self.client_tracks.clone();
        me
    }

    /// A new socket from the client: the frames it is answered with.
    fn open(&mut self, request: &ReconnectRequest) {
        self.socket_open = true;
        self.outbox.clear();
        let leave = |reason: lk::DisconnectReason, action: lk::leave_request::Action| {
            Resp::Leave(lk::LeaveRequest {
                reason: reason as i32,
                action: action as i32,
                ..Default::default()
            })
        };
        if self.removed {
            use lk::leave_request::Action;
            let removed = leave(lk::DisconnectReason::ParticipantRemoved, Action::Disconnect);
            return self.send(removed);
        }
        if self.sends_away {
            use lk::leave_request::Action;
            return self.send(leave(
                lk::DisconnectReason::ServerShutdown,
                Action::Reconnect,
            ));
        }
        match &request.resume {
            Some((sid, _)) if self.client_sid.as_deref() == Some(sid.0.as_str()) => {
                let last_message_seq = self.data.last().copied().unwrap_or(0);
                self.send(Resp::Reconnect(lk::ReconnectResponse {
                    last_message_seq,
                    ..Default::default()
                }));
                let mut all = self.others.clone();
                all.push(self.local_info());
                self.send(Resp::Update(lk::ParticipantUpdate { participants: all }));
                self.subscriber_offer();
            }
            // As livekit-server: a session it does not have cannot be resumed.
            Some(_) => {
                self.send(Resp::Leave(lk::LeaveRequest {
                    reason: lk::DisconnectReason::StateMismatch as i32,
                    action: lk::leave_request::Action::Reconnect as i32,
                    ..Default::default()
                }));
            }
            None => self.join(),
        }
    }

    fn join(&mut self) {
        self.client_sid = Some(self.new_sid());
        self.data.clear();
        self.client_tracks.clear();
        let join = fake::join(self.local_info(), self.others.clone());
        self.outbox.push_back(join);
        self.subscriber_offer();
    }

    fn subscriber_offer(&mut self) {
        self.next_offer += 1;
        self.send(Resp::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp: format!("server offer {}", self.next_offer),
            id: self.next_offer,
            ..Default::default()
        }));
    }

    fn send(&mut self, message: Resp) {
        self.outbox.push_back(fake::frame(message));
    }

    /// The server restarts: it forgets every session.
    pub fn restart(&mut self) {
        self.client_sid = None;
        self.socket_open = false;
        self.outbox.clear();
    }

    fn handle(&mut self, frame: &[u8]) {
        let request = fake::request(frame);
        match &request {
            Req::PingReq(p) => self.send(Resp::PongResp(lk::Pong {
                last_ping_timestamp: p.timestamp,
                timestamp: p.timestamp,
            })),
            Req::Offer(o) if self.answers_offers => {
                self.send(Resp::Answer(lk::SessionDescription {
                    r#type: "answer".into(),
                    sdp: "answer".into(),
                    id: o.id,
                    ..Default::default()
                }))
            }
            Req::AddTrack(a) => {
                self.next_track += 1;
                let mut track = fake::track(
                    &format!("TR_{}", self.next_track),
                    lk::TrackType::try_from(a.r#type).unwrap_or(lk::TrackType::Audio),
                    a.muted,
                );
                track.source = a.source;
                self.client_tracks.push(track.clone());
                self.send(Resp::TrackPublished(lk::TrackPublishedResponse {
                    cid: a.cid.clone(),
                    track: Some(track),
                }));
            }
            Req::Leave(_) => {
                self.client_sid = None;
                self.socket_open = false;
            }
            _ => {}
        }
        self.received.push(request);
    }

    /// The SyncStates the client sent, in order.
    pub fn sync_states(&self) -> Vec<&lk::SyncState> {
        self.received
            .iter()
            .filter_map(|r| match r {
                Req::SyncState(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

/// The client, the server, and the network between them.
pub(crate) struct Pair {
    pub now: Instant,
    pub client: Session,
    pub server: FakeServer,
    /// Every event the client emitted, in order (taken by `take_events`).
    events: Vec<SessionEvent>,
    /// When the client's `Disconnected` came.
    pub gave_up_at: Option<Instant>,
    /// Every data packet the client handed to the network, as sent.
    pub sent_data: Vec<Vec<u8>>,
    /// Every reconnect request the client made.
    pub requests: Vec<ReconnectRequest>,
    /// PeerConnections made anew (full reconnects).
    pub pc_generations: u32,
    pub ice_restarts: u32,
    /// Whether the PeerConnections can connect (signalling aside).
    pub media_up: bool,
    /// How long opening a socket takes to fail while the network is down.
    pub connect_timeout: Duration,
    connecting: Option<(Instant, ReconnectRequest)>,
}

impl Pair {
    /// Joined, the PeerConnections up, with `others` in the room.
    pub fn joined(others: Vec<lk::ParticipantInfo>) -> Self {
        let now = Instant::now();
        let mut server = FakeServer::new();
        server.others = others;
        server.socket_open = true;
        server.join();
        let mut pair = Self {
            now,
            client: Session::new(now, T0_MS),
            server,
            events: Vec::new(),
            gave_up_at: None,
            sent_data: Vec::new(),
            requests: Vec::new(),
            pc_generations: 1,
            ice_restarts: 0,
            media_up: true,
            connect_timeout: Duration::from_secs(5),
            connecting: None,
        };
        pair.step();
        let _ = pair.client.publisher_offer(now, "first offer".into());
        pair.step();
        pair
    }

    pub fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }

    /// The signalling socket breaks (the network stays up): the client is told at once.
    pub fn break_signal(&mut self) {
        self.server.socket_open = false;
        self.server.outbox.clear();
        self.client
            .handle_signal_lost(self.now, "connection reset".into());
        self.advance(Duration::ZERO);
    }

    /// The network goes silent and the client has noticed (its socket failed).
    pub fn lose_network(&mut self) {
        self.server.network_up = false;
        self.client.handle_signal_lost(self.now, "reset".into());
        self.step();
    }

    /// The network comes back: a socket being opened gets through (as TCP's next SYN
    /// retransmission would), and everything moves again.
    pub fn network_back(&mut self) {
        self.server.network_up = true;
        if let Some((_, request)) = self.connecting.take() {
            self.connect(request);
        }
        self.step();
    }

    /// Moves everything that can move at `now`, until nothing does.
    pub fn step(&mut self) {
        loop {
            let mut moved = false;
            while let Some(frame) = self.client.poll_transmit() {
                moved = true;
                if self.server.network_up && self.server.socket_open {
                    self.server.handle(&frame);
                }
            }
            while let Some(command) = self.client.poll_rtc() {
                moved = true;
                self.rtc(command);
            }
            if self.server.network_up && self.server.socket_open {
                while let Some(frame) = self.server.outbox.pop_front() {
                    moved = true;
                    let _ = self.client.handle_frame(self.now, &frame);
                }
            }
            while let Some(packet) = self.client.poll_data_transmit(self.now) {
                moved = true;
                if self.server.network_up {
                    self.sent_data.push(packet.clone());
                    let p = lk::DataPacket::decode(&packet[..]).unwrap();
                    let asks = matches!(&p.value, Some(lk::data_packet::Value::User(u))
                        if u.topic.as_deref() == Some(crate::MISSED_TOPIC));
                    if asks {
                        self.server.missed_requests += 1;
                    } else {
                        self.server.data.push(p.sequence);
                    }
                }
            }
            if let Some(request) = self.client.poll_reconnect() {
                moved = true;
                self.requests.push(request.clone());
                self.connect(request);
            }
            if self.server.network_up
                && self.media_up
                && self.client.state() == SessionState::Reconnecting
            {
                self.client.handle_transport_ready(self.now);
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                if matches!(event, SessionEvent::Disconnected { .. }) {
                    self.gave_up_at = Some(self.now);
                }
                self.events.push(event);
            }
            if !moved {
                break;
            }
        }
    }

    fn connect(&mut self, request: ReconnectRequest) {
        if !self.server.network_up {
            self.connecting = Some((self.now + self.connect_timeout, request));
        } else if self.server.unauthorized {
            let refused = SignalFailure::Unauthorized("401 Unauthorized".into());
            self.client.handle_reconnect_failed(self.now, refused);
        } else {
            self.server.open(&request);
            let snapshot = RtcSnapshot {
                subscriber_offer: Some("server offer".into()),
                subscriber_answer: Some("answer".into()),
                data_channels: vec![crate::DataChannelInfo {
                    label: "_reliable".into(),
                    id: 1,
                    target: SignalTarget::Publisher,
                }],
            };
            self.client.handle_signal_opened(self.now, snapshot);
        }
    }

    /// The fake WebRTC layer: every step succeeds at once.
    fn rtc(&mut self, command: RtcCommand) {
        let now = self.now;
        let c = &mut self.client;
        match command {
            RtcCommand::ApplySubscriberOffer { id, .. } => {
                c.remote_description_applied(SignalTarget::Subscriber);
                c.subscriber_answer(id, "answer".into());
            }
            RtcCommand::ApplyPublisherAnswer { .. } => {
                c.remote_description_applied(SignalTarget::Publisher)
            }
            RtcCommand::AddRemoteCandidate { .. } => {}
            RtcCommand::RenegotiatePublisher => {
                let _ = c.publisher_offer(now, "offer".into());
            }
            RtcCommand::RestartPublisherIce => {
                self.ice_restarts += 1;
                let _ = c.publisher_offer(now, "offer with ice restart".into());
            }
            RtcCommand::ReplacePeerConnections => {
                self.pc_generations += 1;
                let _ = c.publisher_offer(now, "first offer".into());
            }
        }
    }

    /// Runs simulated time forward by `by`, firing every timer on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        let mut steps = 0;
        loop {
            let connect = self.connecting.as_ref().map(|(at, _)| *at);
            let next = [self.client.poll_timeout(), connect]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(next) = next else { break };
            self.now = next.max(self.now);
            if connect.is_some_and(|t| t <= self.now) {
                let (_, request) = self.connecting.take().unwrap();
                if self.server.network_up {
                    self.connect(request);
                } else {
                    let failure = SignalFailure::Unreachable("connect timed out".into());
                    self.client.handle_reconnect_failed(self.now, failure);
                }
            }
            self.client.handle_timeout(self.now);
            self.step();
            if self.client.poll_timeout().is_none() && self.connecting.is_none() {
                break;
            }
            steps += 1;
            // A timer that stays due without anything changing: the driver would spin.
            assert!(steps < 10_000, "the session's timer never stops firing");
        }
        self.now = end;
        self.client.handle_timeout(self.now);
        self.step();
    }
}
