//! The session state machine: frames and time in, frames to send and events out.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::chat::{self, ChatAssembler, ChatError, ChatMessage, ChatReceiveError};
use crate::events::{DisconnectReason, LeaveAction, SessionEvent};
use crate::ids::{ParticipantIdentity, ParticipantSid, TrackSid};
use crate::model::{Change, IceServer, Participant, Room, Roster, TrackSettings};
use crate::negotiation::{Negotiation, OFFER_ATTEMPTS, OfferExpiry, RtcCommand};
use crate::wire::{self, DataError, FrameError, Inbound, Outbound, data};

/// A data packet that could not be used; the session is unaffected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataReceiveError {
    #[error(transparent)]
    Malformed(#[from] DataError),
    #[error(transparent)]
    Chat(#[from] ChatReceiveError),
}

/// Chat messages taken from one sender per second: a class's busiest chatter sends a few
/// (a bot relaying a transcript, a few dozen); beyond, a flood (a script, a hostile peer)
/// is dropped and counted, so the room and the application stay responsive.
pub const MAX_CHAT_PER_SECOND: u32 = 50;
const CHAT_WINDOW: Duration = Duration::from_secs(1);

struct ChatWindow {
    started: Instant,
    taken: u32,
    dropped: u64,
}

/// The server must answer the upgrade with a JoinResponse within this (the SDKs use 5–10 s).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Used when the JoinResponse carries none (the server sends 5 s / 15 s).
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the JoinResponse.
    Joining,
    Connected,
    Disconnected,
}

pub struct Session {
    state: SessionState,
    started: Instant,
    /// Unix milliseconds at `started`: ping timestamps are wall-clock on the wire.
    unix_ms_at_start: i64,
    room: Room,
    local: Option<Participant>,
    roster: Roster,
    /// Active speakers and their levels, loudest first.
    speakers: Vec<(ParticipantSid, f32)>,
    refresh_token: Option<String>,
    ice_servers: Vec<IceServer>,
    ping_interval: Duration,
    ping_timeout: Duration,
    next_ping: Option<Instant>,
    last_received: Instant,
    rtt_ms: Option<u32>,
    transmits: VecDeque<Vec<u8>>,
    /// Reliable data packets to send on the publisher's `_reliable` channel.
    data_transmits: VecDeque<Vec<u8>>,
    /// Our reliable sequence: 1, 2, 3… for the whole session (continues across resumes).
    data_sequence: u32,
    /// The last reliable sequence seen per sender, to drop duplicates.
    data_seen: HashMap<ParticipantIdentity, u32>,
    /// Chat messages taken from each sender in its current one-second window, and those
    /// dropped beyond the rate (told when the window ends).
    chat_rate: HashMap<ParticipantIdentity, ChatWindow>,
    chat: ChatAssembler,
    negotiation: Negotiation,
    rtc: VecDeque<RtcCommand>,
    /// AddTrackRequests waiting for the server, by cid.
    pending_tracks: HashMap<String, crate::model::TrackRequest>,
    /// Our tracks the server accepted and has not ended. Kept apart from `local.tracks`,
    /// which participant updates replace (and which lists a track only once its media
    /// arrived), so an unpublish is told whatever came first.
    published: std::collections::HashSet<TrackSid>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    /// A session whose WebSocket just opened at `now` (`unix_ms`: the wall clock then).
    pub fn new(now: Instant, unix_ms: i64) -> Self {
        Self {
            state: SessionState::Joining,
            started: now,
            unix_ms_at_start: unix_ms,
            room: Room::default(),
            local: None,
            roster: Roster::default(),
            speakers: Vec::new(),
            refresh_token: None,
            ice_servers: Vec::new(),
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            next_ping: None,
            last_received: now,
            rtt_ms: None,
            transmits: VecDeque::new(),
            data_transmits: VecDeque::new(),
            data_sequence: 0,
            data_seen: HashMap::new(),
            chat_rate: HashMap::new(),
            chat: ChatAssembler::default(),
            negotiation: Negotiation::default(),
            rtc: VecDeque::new(),
            pending_tracks: HashMap::new(),
            published: Default::default(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn room(&self) -> &Room {
        &self.room
    }

    pub fn local(&self) -> Option<&Participant> {
        self.local.as_ref()
    }

    pub fn participant(&self, sid: &ParticipantSid) -> Option<&Participant> {
        self.roster.get(sid)
    }

    pub fn remote_count(&self) -> usize {
        self.roster.len()
    }

    /// The newest token the server handed out, for reconnects.
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_deref()
    }

    /// STUN/TURN servers the server handed out (unfiltered: public STUN included).
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    pub fn rtt_ms(&self) -> Option<u32> {
        self.rtt_ms
    }

    /// One binary frame from the server. A frame that does not decode, or that makes no sense
    /// now, is an error and changes nothing but the liveness timer.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Result<(), FrameError> {
        if self.state == SessionState::Disconnected {
            return Ok(());
        }
        self.last_received = now;
        let inbound = wire::decode(frame)?;
        if self.state == SessionState::Joining {
            return self.handle_first(now, inbound);
        }
        match inbound {
            Inbound::Join(_) => return Err(FrameError::Unexpected("a second JoinResponse")),
            Inbound::ParticipantUpdate(list) => self.handle_participants(list),
            Inbound::SpeakersChanged(deltas) => self.handle_speakers(deltas),
            Inbound::RoomUpdate(room) => {
                self.room = room.clone();
                self.events.push_back(SessionEvent::RoomUpdated(room));
            }
            Inbound::ConnectionQuality(updates) => {
                for (participant, quality) in updates {
                    self.events
                        .push_back(SessionEvent::ConnectionQualityChanged {
                            participant,
                            quality,
                        });
                }
            }
            Inbound::Leave {
                reason,
                reason_name,
                action,
            } => self.disconnect(
                DisconnectReason::Server {
                    code: reason,
                    name: reason_name,
                },
                action,
            ),
            Inbound::RefreshToken(token) => self.refresh_token = Some(token),
            Inbound::Pong { last_ping_ms } => {
                // A pong for a ping we could not have sent (clock jump, forged value) is
                // ignored; the value is the server's, so the subtraction may not overflow.
                let rtt = self.unix_ms(now).checked_sub(last_ping_ms);
                let longest = i64::try_from(self.ping_timeout.as_millis()).unwrap_or(i64::MAX);
                if let Some(rtt) = rtt.filter(|r| (0..=longest).contains(r)) {
                    self.rtt_ms = Some(rtt as u32);
                    self.events
                        .push_back(SessionEvent::RoundTripMeasured { rtt_ms: rtt as u32 });
                }
            }
            Inbound::LegacyPong | Inbound::Ignored(_) => {}
            Inbound::Mute { track, muted } => self.handle_server_mute(track, muted),
            Inbound::Offer(d) => self.rtc.push_back(RtcCommand::ApplySubscriberOffer {
                id: d.id,
                sdp: d.sdp,
                mid_to_track: d.mid_to_track,
            }),
            Inbound::Answer(d) => {
                let Some(renegotiate) = self.negotiation.answered(d.id) else {
                    return Err(FrameError::Unexpected("an answer to no outstanding offer"));
                };
                self.rtc.push_back(RtcCommand::ApplyPublisherAnswer {
                    id: d.id,
                    sdp: d.sdp,
                    mid_to_track: d.mid_to_track,
                });
                if renegotiate {
                    self.rtc.push_back(RtcCommand::RenegotiatePublisher);
                }
            }
            Inbound::Trickle {
                target,
                candidate_init,
            } => {
                if let Some(cmd) = self.negotiation.remote_candidate(target, candidate_init)? {
                    self.rtc.push_back(cmd);
                }
            }
            Inbound::TrackPublished { cid, track } => self.handle_track_published(cid, track),
            Inbound::TrackUnpublished(track) => self.handle_track_unpublished(track),
            Inbound::RequestRefused {
                cid,
                reason,
                message,
            } => {
                if let Some(cid) = cid.filter(|c| self.pending_tracks.remove(c).is_some()) {
                    self.events
                        .push_back(SessionEvent::LocalTrackPublishFailed {
                            cid,
                            reason: format!("{reason}: {message}"),
                        });
                }
            }
        }
        Ok(())
    }

    fn handle_first(&mut self, now: Instant, inbound: Inbound) -> Result<(), FrameError> {
        match inbound {
            Inbound::Join(join) => {
                let join = *join;
                self.state = SessionState::Connected;
                if join.ping_interval_s > 0 {
                    self.ping_interval = Duration::from_secs(join.ping_interval_s.into());
                }
                if join.ping_timeout_s > 0 {
                    self.ping_timeout = Duration::from_secs(join.ping_timeout_s.into());
                }
                self.next_ping = Some(now + self.ping_interval);
                let mut ignored = Vec::new();
                for p in join.others.iter().cloned() {
                    self.roster.apply(p, &mut ignored);
                }
                self.room = join.room.clone();
                self.local = Some(join.local.clone());
                self.ice_servers = join.ice_servers;
                self.events.push_back(SessionEvent::Joined {
                    room: join.room,
                    local: join.local,
                    others: join.others,
                });
                Ok(())
            }
            // A failed resume, a full room…: the server says so instead of joining.
            Inbound::Leave { reason_name, .. } => {
                self.disconnect(
                    DisconnectReason::JoinRefused(reason_name),
                    LeaveAction::Disconnect,
                );
                Ok(())
            }
            _ => Err(FrameError::Unexpected("a message before the JoinResponse")),
        }
    }

    fn handle_participants(&mut self, list: Vec<Participant>) {
        let mut changes = Vec::new();
        for p in list {
            match &mut self.local {
                Some(local) if local.sid == p.sid => {
                    if p.version == 0 || p.version >= local.version {
                        let changed = local.permissions != p.permissions
                            || local.name != p.name
                            || local.metadata != p.metadata
                            || local.attributes != p.attributes;
                        *local = p.clone();
                        if changed {
                            self.events.push_back(SessionEvent::ParticipantUpdated(p));
                        }
                    }
                }
                // Ourselves under an older sid (before a full reconnect): not a remote.
                Some(local) if local.identity == p.identity => {}
                _ => self.roster.apply(p, &mut changes),
            }
        }
        for change in changes {
            let event = match change {
                Change::Joined(p) => SessionEvent::ParticipantJoined(p),
                Change::Updated(p) => SessionEvent::ParticipantUpdated(p),
                Change::Left(sid, identity) => {
                    self.drop_speaker(&sid);
                    self.chat.forget(&identity);
                    self.data_seen.remove(&identity);
                    self.chat_rate.remove(&identity);
                    SessionEvent::ParticipantLeft { sid, identity }
                }
                Change::TrackPublished(participant, track) => {
                    SessionEvent::TrackPublished { participant, track }
                }
                Change::TrackUnpublished(participant, track) => {
                    SessionEvent::TrackUnpublished { participant, track }
                }
                Change::TrackMuted(participant, track, true) => {
                    SessionEvent::TrackMuted { participant, track }
                }
                Change::TrackMuted(participant, track, false) => {
                    SessionEvent::TrackUnmuted { participant, track }
                }
            };
            self.events.push_back(event);
        }
    }

    fn drop_speaker(&mut self, sid: &ParticipantSid) {
        let before = self.speakers.len();
        self.speakers.retain(|(s, _)| s != sid);
        if self.speakers.len() != before {
            self.events.push_back(SessionEvent::ActiveSpeakersChanged(
                self.speakers.iter().map(|(s, _)| s.clone()).collect(),
            ));
        }
    }

    /// Speaker updates are deltas: `active = false` removes one from the set.
    fn handle_speakers(&mut self, deltas: Vec<wire::SpeakerDelta>) {
        let before: Vec<ParticipantSid> = self.speakers.iter().map(|(s, _)| s.clone()).collect();
        for d in deltas {
            self.speakers.retain(|(s, _)| s != &d.sid);
            if d.active {
                self.speakers.push((d.sid, d.level));
            }
        }
        // Stable: equal levels keep their order.
        self.speakers.sort_by(|a, b| b.1.total_cmp(&a.1));
        let after: Vec<ParticipantSid> = self.speakers.iter().map(|(s, _)| s.clone()).collect();
        if after != before {
            self.events
                .push_back(SessionEvent::ActiveSpeakersChanged(after));
        }
    }

    /// The server muted (or unmuted) one of our tracks: obey and tell.
    fn handle_server_mute(&mut self, track: TrackSid, muted: bool) {
        let Some(local) = &mut self.local else { return };
        let participant = local.sid.clone();
        if let Some(t) = local.tracks.iter_mut().find(|t| t.sid == track) {
            t.muted = muted;
        }
        self.events.push_back(if muted {
            SessionEvent::TrackMuted { participant, track }
        } else {
            SessionEvent::TrackUnmuted { participant, track }
        });
    }

    /// Sends pings when due; declares the signal dead after `ping_timeout` of silence.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_chat(now);
        self.tell_dropped_chat(now);
        match self.state {
            SessionState::Joining if now >= self.started + JOIN_TIMEOUT => self.disconnect(
                DisconnectReason::JoinRefused(format!("no JoinResponse within {JOIN_TIMEOUT:?}")),
                LeaveAction::Reconnect,
            ),
            SessionState::Connected if now >= self.last_received + self.ping_timeout => {
                self.disconnect(DisconnectReason::PingTimeout, LeaveAction::Resume)
            }
            SessionState::Connected if self.negotiation.deadline().is_some_and(|t| now >= t) => {
                match self.negotiation.expire(now) {
                    Some(OfferExpiry::Retry(attempt)) => {
                        self.events
                            .push_back(SessionEvent::PublisherOfferUnanswered { attempt });
                        self.rtc.push_back(RtcCommand::RenegotiatePublisher);
                    }
                    Some(OfferExpiry::GiveUp) => self.disconnect(
                        DisconnectReason::MediaFailed(format!(
                            "{OFFER_ATTEMPTS} publisher offers unanswered"
                        )),
                        LeaveAction::Resume,
                    ),
                    None => {}
                }
                // A ping may be due at the same instant.
                self.handle_timeout(now);
            }
            SessionState::Connected if self.next_ping.is_some_and(|t| now >= t) => {
                let ping = Outbound::Ping {
                    now_ms: self.unix_ms(now),
                    rtt_ms: self.rtt_ms.unwrap_or(0).into(),
                };
                self.transmits.push_back(wire::encode(ping));
                self.next_ping = Some(now + self.ping_interval);
            }
            _ => {}
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            SessionState::Joining => Some(self.started + JOIN_TIMEOUT),
            SessionState::Connected => {
                let dead = self.last_received + self.ping_timeout;
                let others = [
                    self.next_ping,
                    self.negotiation.deadline(),
                    self.chat.next_expiry(),
                    self.next_chat_report(),
                ];
                Some(others.into_iter().flatten().fold(dead, Instant::min))
            }
            SessionState::Disconnected => None,
        }
    }

    /// Mutes or unmutes one of our tracks, without renegotiation.
    pub fn set_track_muted(&mut self, track: &TrackSid, muted: bool) {
        if self.state != SessionState::Connected {
            return;
        }
        self.transmits.push_back(wire::encode(Outbound::Mute {
            track: track.clone(),
            muted,
        }));
        if let Some(t) = self
            .local
            .as_mut()
            .and_then(|l| l.tracks.iter_mut().find(|t| &t.sid == track))
        {
            t.muted = muted;
        }
    }

    /// Asks the server to forward one remote video track at the layer that fits a tile of
    /// `width`×`height` (or to pause it when `enabled` is false). Before the join, nothing.
    pub fn set_track_settings(&mut self, track: &TrackSid, settings: TrackSettings) {
        if self.state != SessionState::Connected {
            return;
        }
        self.transmits
            .push_back(wire::encode(Outbound::TrackSettings {
                track: track.clone(),
                settings,
            }));
    }

    /// Queues a chat message (text stream on `lk.chat` plus the legacy packet) for the
    /// `_reliable` channel. `stream_id` must be unique (a UUID): it is the message id.
    pub fn send_chat(
        &mut self,
        now: Instant,
        stream_id: &str,
        text: &str,
    ) -> Result<ChatMessage, ChatError> {
        let from = match (&self.state, &self.local) {
            (SessionState::Connected, Some(local)) => local.identity.clone(),
            _ => return Err(ChatError::NotConnected),
        };
        let timestamp_ms = self.unix_ms(now);
        for payload in chat::outgoing(text, stream_id, timestamp_ms)? {
            self.data_sequence = self.data_sequence.wrapping_add(1).max(1);
            self.data_transmits
                .push_back(data::encode(self.data_sequence, payload));
        }
        Ok(ChatMessage {
            id: stream_id.to_owned(),
            from,
            timestamp_ms,
            text: text.to_owned(),
        })
    }

    /// The signalling socket closed or failed under us.
    pub fn handle_signal_lost(&mut self, why: String) {
        if self.state != SessionState::Disconnected {
            self.disconnect(DisconnectReason::SignalLost(why), LeaveAction::Resume);
        }
    }

    /// The WebRTC layer failed (a PeerConnection failed, an SDP step was refused).
    pub fn handle_media_failed(&mut self, why: String) {
        if self.state != SessionState::Disconnected {
            self.disconnect(DisconnectReason::MediaFailed(why), LeaveAction::Resume);
        }
    }

    /// One message from a data channel.
    pub fn handle_data(&mut self, now: Instant, packet: &[u8]) -> Result<(), DataReceiveError> {
        self.expire_chat(now);
        let packet = data::decode(packet)?;
        if packet.sequence != 0 {
            let last = self.data_seen.entry(packet.from.clone()).or_default();
            if packet.sequence <= *last {
                return Ok(()); // a duplicate after a resume
            }
            *last = packet.sequence;
        }
        if let Some(message) = self.chat.handle(now, packet)? {
            let window = self
                .chat_rate
                .entry(message.from.clone())
                .or_insert(ChatWindow {
                    started: now,
                    taken: 0,
                    dropped: 0,
                });
            if now >= window.started + CHAT_WINDOW {
                let dropped = std::mem::take(&mut window.dropped);
                *window = ChatWindow {
                    started: now,
                    taken: 0,
                    dropped: 0,
                };
                if dropped > 0 {
                    self.events.push_back(SessionEvent::ChatDropped {
                        from: message.from.clone(),
                        count: dropped,
                    });
                }
            }
            if window.taken < MAX_CHAT_PER_SECOND {
                window.taken += 1;
                self.events.push_back(SessionEvent::ChatReceived(message));
            } else {
                window.dropped += 1;
            }
        }
        Ok(())
    }

    /// Senders whose flood window ended are told about: how many were dropped.
    fn tell_dropped_chat(&mut self, now: Instant) {
        for (from, window) in &mut self.chat_rate {
            if window.dropped > 0 && now >= window.started + CHAT_WINDOW {
                self.events.push_back(SessionEvent::ChatDropped {
                    from: from.clone(),
                    count: std::mem::take(&mut window.dropped),
                });
            }
        }
    }

    /// When a flood's count is next due.
    fn next_chat_report(&self) -> Option<Instant> {
        self.chat_rate
            .values()
            .filter(|w| w.dropped > 0)
            .map(|w| w.started + CHAT_WINDOW)
            .min()
    }

    /// Chat streams whose trailer is overdue are given up, and said so.
    fn expire_chat(&mut self, now: Instant) {
        for lost in self.chat.expire(now) {
            self.events.push_back(SessionEvent::ChatIncomplete {
                from: lost.from,
                stream_id: lost.stream_id,
            });
        }
    }

    pub fn poll_data_transmit(&mut self) -> Option<Vec<u8>> {
        self.data_transmits.pop_front()
    }

    /// Leaves the room: queues the LeaveRequest; send it, then close the socket.
    pub fn leave(&mut self) {
        if self.state == SessionState::Disconnected {
            return;
        }
        self.transmits.push_back(wire::encode(Outbound::Leave));
        self.disconnect(DisconnectReason::ClientInitiated, LeaveAction::Disconnect);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn disconnect(&mut self, reason: DisconnectReason, action: LeaveAction) {
        self.state = SessionState::Disconnected;
        self.next_ping = None;
        self.events
            .push_back(SessionEvent::Disconnected { reason, action });
    }

    fn unix_ms(&self, now: Instant) -> i64 {
        self.unix_ms_at_start + now.saturating_duration_since(self.started).as_millis() as i64
    }
}

#[path = "session_rtc.rs"]
mod rtc;
pub use rtc::PublishError;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
