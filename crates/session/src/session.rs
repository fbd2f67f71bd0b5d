//! The session state machine: frames and time in, frames to send and events out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::chat::{ChatAssembler, ChatReceiveError};
use crate::events::{DisconnectReason, LeaveAction, SessionEvent};
use crate::ids::{ParticipantIdentity, ParticipantSid, TrackSid};
use crate::model::{
    Change, IceServer, Participant, Room, Roster, TrackKind, TrackPublication, TrackSettings,
};
use crate::negotiation::{Negotiation, OFFER_ATTEMPTS, OfferExpiry, RtcCommand};
use crate::reconnect::{ReconnectKind, ReconnectRequest, Reconnection};
use crate::wire::{self, DataError, FrameError, Inbound, JoinInfo, Outbound};

/// A data packet that could not be used; the session is unaffected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataReceiveError {
    #[error(transparent)]
    Malformed(#[from] DataError),
    #[error(transparent)]
    Chat(#[from] ChatReceiveError),
    #[error(transparent)]
    MissedRequest(#[from] crate::missed::MissedRequestError),
}

/// Chat messages taken from one sender per second: a class's busiest chatter sends a few
/// (a bot relaying a transcript, a few dozen); beyond, a flood (a script, a hostile peer)
/// is dropped and counted, so the room and the application stay responsive.
pub const MAX_CHAT_PER_SECOND: u32 = 50;
const CHAT_WINDOW: Duration = Duration::from_secs(1);
/// Chat written while reconnecting waits, up to this much; beyond, sending is refused
/// (`ChatError::QueueFull`) rather than memory growing through a long outage.
pub const MAX_QUEUED_CHAT_BYTES: usize = 1024 * 1024;
/// Reliable packets kept after sending, to send again after a reconnect.
const MAX_RESEND_BYTES: usize = 1024 * 1024;
const MAX_RESEND_PACKETS: usize = 512;
/// Chat message ids remembered to drop one that arrives twice (a sender's resend after
/// its reconnect).
const RECENT_CHAT_IDS: usize = 1024;

/// One reliable packet of ours, with the chat message it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub sequence: u32,
    pub message_id: String,
    /// Written by the user now (not a request of ours, nor an answer to someone's): counts
    /// toward the queue's bound, and is reported undelivered if the session ends first.
    pub user_chat: bool,
    pub bytes: Vec<u8>,
}

/// Whose reliable sequence: per sender session (its sid, set by the server), or per
/// identity when a server does not say the sid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Sender {
    Sid(String),
    Identity(ParticipantIdentity),
}

impl Sender {
    pub fn sid(&self) -> Option<&str> {
        match self {
            Sender::Sid(s) => Some(s),
            Sender::Identity(_) => None,
        }
    }
}

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
    /// The connection was lost; the session is getting it back (see `poll_reconnect`).
    Reconnecting,
    /// Over for good: `Disconnected` was the last event.
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
    data_transmits: VecDeque<Outgoing>,
    /// Their bytes: bounded while reconnecting.
    queued_bytes: usize,
    /// Packets handed out, oldest first, with when: sent again after a reconnect.
    sent: VecDeque<(Instant, Outgoing)>,
    sent_bytes: usize,
    /// Our reliable sequence: 1, 2, 3… for the whole session (continues across resumes).
    data_sequence: u32,
    /// The last reliable sequence seen per sender, to drop duplicates.
    data_seen: HashMap<Sender, u32>,
    /// Chat ids seen lately (and their order, to forget the oldest).
    recent_chat: HashSet<String>,
    recent_chat_order: VecDeque<String>,
    /// Chat messages taken from each sender in its current one-second window, and those
    /// dropped beyond the rate (told when the window ends).
    chat_rate: HashMap<ParticipantIdentity, ChatWindow>,
    chat: ChatAssembler,
    /// Our chat, kept to send again to whoever missed it during a reconnect.
    pub(crate) missed: crate::missed::MissedChat,
    /// Requests for missed chat still to send (when, and since when we were away).
    pub(crate) missed_asks: VecDeque<(Instant, Instant)>,
    negotiation: Negotiation,
    rtc: VecDeque<RtcCommand>,
    /// AddTrackRequests waiting for the server, by cid.
    pending_tracks: HashMap<String, crate::model::TrackRequest>,
    /// Our tracks the server accepted and has not ended. Kept apart from `local.tracks`,
    /// which participant updates replace (and which lists a track only once its media
    /// arrived), so an unpublish is told whatever came first.
    pub(crate) published: HashMap<TrackSid, (String, TrackPublication)>,
    /// A lost session being got back.
    pub(crate) reconnection: Option<Reconnection>,
    pub(crate) reconnect_requests: VecDeque<ReconnectRequest>,
    /// The server asked for full reconnects only.
    pub(crate) resume_disabled: bool,
    pub(crate) jitter_state: u64,
    /// Mutes the user asked for while no socket was up: sent after a resume.
    pub(crate) held_mutes: HashMap<TrackSid, bool>,
    /// How each remote video is wanted (the application's tile sizes): sent again after a
    /// reconnect. Forgotten when the track goes.
    pub(crate) track_settings: HashMap<TrackSid, TrackSettings>,
    /// Every remote video limited from our side (`limit_remote_video`).
    pub(crate) video_limit: RemoteVideoLimit,
    /// Remote tracks the server has paused for us (only tracks of the roster: a server
    /// naming others grows nothing).
    paused_streams: HashSet<TrackSid>,
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
            queued_bytes: 0,
            sent: VecDeque::new(),
            sent_bytes: 0,
            data_sequence: 0,
            data_seen: HashMap::new(),
            recent_chat: HashSet::new(),
            recent_chat_order: VecDeque::new(),
            chat_rate: HashMap::new(),
            chat: ChatAssembler::default(),
            missed: Default::default(),
            missed_asks: VecDeque::new(),
            negotiation: Negotiation::default(),
            rtc: VecDeque::new(),
            pending_tracks: HashMap::new(),
            paused_streams: HashSet::new(),
            published: HashMap::new(),
            reconnection: None,
            reconnect_requests: VecDeque::new(),
            resume_disabled: false,
            jitter_state: (unix_ms as u64) | 1,
            held_mutes: HashMap::new(),
            track_settings: HashMap::new(),
            video_limit: RemoteVideoLimit::None,
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
        match self.state {
            SessionState::Joining => return self.handle_first(now, inbound),
            SessionState::Reconnecting if !self.restoring() => {
                return self.handle_reconnect_answer(now, inbound);
            }
            _ => {}
        }
        match inbound {
            Inbound::Join(_) => return Err(FrameError::Unexpected("a second JoinResponse")),
            Inbound::Reconnect { .. } => {
                return Err(FrameError::Unexpected(
                    "a ReconnectResponse outside a resume",
                ));
            }
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
            } => {
                let why = DisconnectReason::Server {
                    code: reason,
                    name: reason_name,
                };
                match action {
                    LeaveAction::Disconnect => self.disconnect(why),
                    LeaveAction::Resume => self.lose(now, why, ReconnectKind::Resume, true),
                    LeaveAction::Reconnect => self.lose(now, why, ReconnectKind::Full, true),
                }
            }
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
            Inbound::StreamStates(states) => self.handle_stream_states(states),
            Inbound::SubscribedQualities { track, wanted } => {
                let ours = self
                    .local
                    .as_ref()
                    .is_some_and(|l| l.tracks.iter().any(|t| t.sid == track));
                if ours {
                    self.events
                        .push_back(SessionEvent::LayersWanted { track, wanted });
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
                self.publisher_answered();
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
                self.apply_join_settings(now, &join);
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
                self.disconnect(DisconnectReason::JoinRefused(reason_name));
                Ok(())
            }
            _ => Err(FrameError::Unexpected("a message before the JoinResponse")),
        }
    }

    /// What a JoinResponse sets up besides the room: timers, the server's wishes.
    pub(crate) fn apply_join_settings(&mut self, now: Instant, join: &JoinInfo) {
        if join.ping_interval_s > 0 {
            self.ping_interval = Duration::from_secs(join.ping_interval_s.into());
        }
        if join.ping_timeout_s > 0 {
            self.ping_timeout = Duration::from_secs(join.ping_timeout_s.into());
        }
        self.resume_disabled = join.resume_disabled;
        self.next_ping = Some(now + self.ping_interval);
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
        self.report_changes(changes);
    }

    /// Roster changes, as events (and what a participant's departure makes moot).
    pub(crate) fn report_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            let event = match change {
                Change::Joined(p) => SessionEvent::ParticipantJoined(p),
                Change::Updated(p) => SessionEvent::ParticipantUpdated(p),
                Change::Left(sid, identity) => {
                    self.drop_speaker(&sid);
                    self.chat.forget(&identity);
                    self.data_seen.remove(&Sender::Sid(sid.0.clone()));
                    self.data_seen.remove(&Sender::Identity(identity.clone()));
                    self.chat_rate.remove(&identity);
                    self.missed.forget(&identity);
                    let roster = &self.roster;
                    self.track_settings.retain(|t, _| roster.has_track(t));
                    SessionEvent::ParticipantLeft { sid, identity }
                }
                Change::TrackPublished(participant, track) => {
                    // Remote video limited: a new camera is too.
                    if self.video_limit != RemoteVideoLimit::None
                        && track.kind == TrackKind::Video
                        && self.signalling()
                    {
                        self.send_track_settings(track.sid.clone(), video_impl::UNSET);
                    }
                    SessionEvent::TrackPublished { participant, track }
                }
                Change::TrackUnpublished(participant, track) => {
                    self.track_settings.remove(&track);
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

    /// The server paused or resumed tracks it forwards to us: told on a change only.
    fn handle_stream_states(&mut self, states: Vec<(ParticipantSid, TrackSid, bool)>) {
        let roster = &self.roster;
        self.paused_streams.retain(|t| roster.has_track(t));
        for (participant, track, paused) in states {
            if !self.roster.has_track(&track) {
                continue;
            }
            let changed = if paused {
                self.paused_streams.insert(track.clone())
            } else {
                self.paused_streams.remove(&track)
            };
            if changed {
                self.events
                    .push_back(SessionEvent::TrackStreamStateChanged {
                        participant,
                        track,
                        paused,
                    });
            }
        }
    }

    /// Sends pings when due; notices a dead signal connection after `ping_timeout` of
    /// silence (and starts reconnecting); runs the reconnection's timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_chat(now);
        self.tell_dropped_chat(now);
        match self.state {
            SessionState::Joining if now >= self.started + JOIN_TIMEOUT => self.disconnect(
                DisconnectReason::JoinRefused(format!("no JoinResponse within {JOIN_TIMEOUT:?}")),
            ),
            SessionState::Reconnecting if !self.restoring() => self.reconnect_timeout(now),
            SessionState::Connected | SessionState::Reconnecting => self.connected_timeout(now),
            _ => {}
        }
    }

    /// Timers while signalling works (connected, or restoring after a reconnect).
    fn connected_timeout(&mut self, now: Instant) {
        if self.state == SessionState::Connected {
            self.ask_missed_again(now);
        }
        if self.reconnect_deadline().is_some_and(|t| now >= t) {
            self.reconnect_timeout(now);
        } else if now >= self.last_received + self.ping_timeout {
            self.lose(
                now,
                DisconnectReason::PingTimeout,
                ReconnectKind::Resume,
                false,
            );
        } else if self.negotiation.deadline().is_some_and(|t| now >= t) {
            match self.negotiation.expire(now) {
                Some(OfferExpiry::Retry(attempt)) => {
                    self.events
                        .push_back(SessionEvent::PublisherOfferUnanswered { attempt });
                    self.rtc.push_back(RtcCommand::RenegotiatePublisher);
                }
                Some(OfferExpiry::GiveUp) => self.lose(
                    now,
                    DisconnectReason::MediaFailed(format!(
                        "{OFFER_ATTEMPTS} publisher offers unanswered"
                    )),
                    ReconnectKind::Resume,
                    false,
                ),
                None => {}
            }
            // A ping may be due at the same instant.
            if self.signalling() {
                self.connected_timeout(now);
            }
        } else if self.next_ping.is_some_and(|t| now >= t) {
            let ping = Outbound::Ping {
                now_ms: self.unix_ms(now),
                rtt_ms: self.rtt_ms.unwrap_or(0).into(),
            };
            self.transmits.push_back(wire::encode(ping));
            self.next_ping = Some(now + self.ping_interval);
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let chat = [self.chat.next_expiry(), self.next_chat_report()];
        let chat = chat.into_iter().flatten();
        match self.state {
            SessionState::Joining => Some(self.started + JOIN_TIMEOUT),
            SessionState::Reconnecting if !self.restoring() => {
                chat.chain(self.reconnect_deadline()).min()
            }
            SessionState::Connected | SessionState::Reconnecting => {
                let dead = self.last_received + self.ping_timeout;
                let others = [
                    self.next_ping,
                    self.negotiation.deadline(),
                    self.reconnect_deadline(),
                    self.missed_asks.front().map(|(at, _)| *at),
                ];
                Some(
                    others
                        .into_iter()
                        .flatten()
                        .chain(chat)
                        .fold(dead, Instant::min),
                )
            }
            SessionState::Disconnected => None,
        }
    }

    /// Whether the signalling socket works: connected, or a reconnect's server answer came.
    pub fn signalling(&self) -> bool {
        self.state == SessionState::Connected || self.restoring()
    }

    /// Mutes or unmutes one of our tracks, without renegotiation.
    /// While reconnecting it is remembered and sent once the session is back.
    pub fn set_track_muted(&mut self, track: &TrackSid, muted: bool) {
        match self.state {
            _ if self.signalling() => {
                // Said now: a mute held from before must not follow and undo it.
                self.held_mutes.remove(track);
                self.transmits.push_back(wire::encode(Outbound::Mute {
                    track: track.clone(),
                    muted,
                }))
            }
            SessionState::Reconnecting if self.published.contains_key(track) => {
                self.held_mutes.insert(track.clone(), muted);
            }
            _ => return,
        }
        if let Some(t) = self
            .local
            .as_mut()
            .and_then(|l| l.tracks.iter_mut().find(|t| &t.sid == track))
        {
            t.muted = muted;
        }
    }

    /// Asks the server to forward one remote video track at the layer that fits a tile of
    /// `width`×`height` (or to pause it when `enabled` is false). Before the join, nothing;
    /// while reconnecting, remembered (and sent again after any reconnect).
    pub fn set_track_settings(&mut self, track: &TrackSid, settings: TrackSettings) {
        if matches!(
            self.state,
            SessionState::Joining | SessionState::Disconnected
        ) {
            return;
        }
        if self.roster.has_track(track) {
            self.track_settings.insert(track.clone(), settings);
        }
        if !self.signalling() {
            return;
        }
        self.send_track_settings(track.clone(), settings);
    }

    /// The signalling socket closed or failed under us: reconnect (a resume first).
    pub fn handle_signal_lost(&mut self, now: Instant, why: String) {
        let waiting = self.reconnection.as_ref().is_some_and(|r| {
            matches!(
                r.phase,
                crate::reconnect::Phase::Waiting(_) | crate::reconnect::Phase::Opening(_)
            )
        });
        // The old socket's late news, while the next attempt is being made: not news.
        if !waiting {
            let why = DisconnectReason::SignalLost(why);
            self.lose(now, why, ReconnectKind::Resume, false);
        }
    }

    /// The WebRTC layer failed (a PeerConnection failed, an SDP step was refused):
    /// resume (ICE restart); while restoring after a reconnect, a full reconnect.
    pub fn handle_media_failed(&mut self, now: Instant, why: String) {
        let why = DisconnectReason::MediaFailed(why);
        match self.state {
            SessionState::Connected => self.lose(now, why, ReconnectKind::Resume, false),
            SessionState::Reconnecting if self.restoring() => {
                self.attempt_failed(now, why, Some(ReconnectKind::Full), false)
            }
            // Reconnecting already: the PeerConnections are being restarted or replaced.
            _ => {}
        }
    }

    /// A PeerConnection lost its path (ICE disconnected: nothing heard for seconds). Much
    /// sooner than `Failed` (which comes ~25 s later): resume now.
    pub fn handle_media_interrupted(&mut self, now: Instant, why: String) {
        if self.state == SessionState::Connected {
            let why = DisconnectReason::MediaFailed(why);
            self.lose(now, why, ReconnectKind::Resume, false);
        }
    }

    /// Leaves the room: queues the LeaveRequest; send it, then close the socket.
    pub fn leave(&mut self) {
        if self.state == SessionState::Disconnected {
            return;
        }
        if self.signalling() || self.state == SessionState::Joining {
            self.transmits.push_back(wire::encode(Outbound::Leave));
        }
        self.disconnect(DisconnectReason::ClientInitiated);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Ends the session for good. Chat still queued is reported undelivered, one event
    /// per message, before `Disconnected`.
    pub(crate) fn disconnect(&mut self, reason: DisconnectReason) {
        self.state = SessionState::Disconnected;
        self.next_ping = None;
        self.reconnection = None;
        self.reconnect_requests.clear();
        let mut told = HashSet::new();
        for packet in std::mem::take(&mut self.data_transmits) {
            // A request or an answer of ours: nothing the user just wrote.
            if !packet.user_chat {
                continue;
            }
            if told.insert(packet.message_id.clone()) {
                self.events.push_back(SessionEvent::ChatUndelivered {
                    id: packet.message_id,
                });
            }
        }
        self.queued_bytes = 0;
        self.events.push_back(SessionEvent::Disconnected { reason });
    }

    fn unix_ms(&self, now: Instant) -> i64 {
        self.unix_ms_at_start + now.saturating_duration_since(self.started).as_millis() as i64
    }
}

#[path = "session_chat.rs"]
mod chat_impl;
#[path = "session_reconnect.rs"]
mod reconnect_impl;
#[path = "session_rtc.rs"]
mod rtc;
#[path = "session_video.rs"]
mod video_impl;
pub use rtc::PublishError;
pub use video_impl::RemoteVideoLimit;

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
