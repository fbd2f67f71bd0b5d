//! The session's side of getting a lost connection back: it decides the kind of
//! reconnect, when each attempt starts, when to give up and what to send again; the I/O
//! layer opens sockets and restarts or replaces the PeerConnections when asked.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Session, SessionState};
use crate::events::{DisconnectReason, SessionEvent};
use crate::model::IceServer;
use crate::negotiation::{Negotiation, RtcCommand};
use crate::reconnect::{
    self, OPEN_TIMEOUT, Phase, RECONNECT_GIVE_UP, RESPONSE_TIMEOUT, RESTORE_TIMEOUT, ReconnectKind,
    ReconnectRequest, Reconnection, RtcSnapshot, SignalFailure,
};
use crate::wire::{self, FrameError, Inbound, JoinInfo, Outbound, SyncState};

impl Session {
    /// The next reconnect attempt to make: open a new signalling socket as it says. Call
    /// after every `handle_timeout`.
    pub fn poll_reconnect(&mut self) -> Option<ReconnectRequest> {
        self.reconnect_requests.pop_front()
    }

    /// The socket of the attempt just handed out is open. For a resume, `rtc` is what the
    /// PeerConnections have now (sent to the server in `SyncState`).
    /// Returns whether the socket is to be used (`false`: the attempt was given up
    /// meanwhile; close it).
    pub fn handle_signal_opened(&mut self, now: Instant, rtc: RtcSnapshot) -> bool {
        let Some(r) = &mut self.reconnection else {
            return false;
        };
        if !matches!(r.phase, Phase::Opening(_)) {
            return false;
        }
        r.phase = Phase::Answering(now + RESPONSE_TIMEOUT);
        r.rtc = rtc;
        self.last_received = now;
        true
    }

    /// Whether the current signalling socket is still of use: not between attempts (an
    /// attempt that failed with its socket open leaves it behind). Drop it when not.
    pub fn socket_wanted(&self) -> bool {
        match &self.reconnection {
            Some(r) => matches!(r.phase, Phase::Answering(_) | Phase::Restoring { .. }),
            None => true,
        }
    }

    /// The attempt just handed out could not open its socket.
    pub fn handle_reconnect_failed(&mut self, now: Instant, failure: SignalFailure) {
        if !self
            .reconnection
            .as_ref()
            .is_some_and(|r| matches!(r.phase, Phase::Opening(_)))
        {
            return;
        }
        match failure {
            SignalFailure::Unauthorized(why) => {
                self.disconnect(DisconnectReason::TokenRefused(why))
            }
            SignalFailure::Unreachable(why) => {
                self.attempt_failed(now, DisconnectReason::SignalLost(why), None, false)
            }
        }
    }

    /// The PeerConnections are connected and `_reliable` is open. Call whenever that
    /// becomes true (calling it more often is harmless): it completes a reconnect whose
    /// server answer came.
    pub fn handle_transport_ready(&mut self, now: Instant) {
        let ready = self.reconnection.as_ref().is_some_and(|r| {
            matches!(
                r.phase,
                Phase::Restoring {
                    publisher_answered: true,
                    ..
                }
            )
        });
        if !ready {
            return;
        }
        let Some(r) = self.reconnection.take() else {
            return;
        };
        self.state = SessionState::Connected;
        self.resend_after(&r);
        self.ask_for_missed_chat(now, r.lost_at);
        // After a full reconnect the republished tracks carry their mute state already.
        let held = std::mem::take(&mut self.held_mutes);
        if r.kind == ReconnectKind::Resume {
            for (track, muted) in held {
                self.transmits
                    .push_back(wire::encode(Outbound::Mute { track, muted }));
            }
        }
        let settings: Vec<_> = self.track_settings.clone().into_iter().collect();
        for (track, settings) in settings {
            self.send_track_settings(track, settings);
        }
        if let Some(local) = self.local.clone() {
            self.events.push_back(SessionEvent::Reconnected {
                kind: r.kind,
                after: now.saturating_duration_since(r.lost_at),
                local,
            });
        }
    }

    /// Reliable packets the others may have missed go out again first: after a resume,
    /// those after the server's `last_message_seq`; after a full reconnect (the server
    /// knows nothing of the old session), those sent in the span the path may have been
    /// dead without our knowing (receivers drop the chat messages they already have by id).
    fn resend_after(&mut self, r: &Reconnection) {
        let resend: VecDeque<_> = match (r.kind, r.last_message_seq) {
            (ReconnectKind::Resume, Some(last)) => {
                let (again, kept) = std::mem::take(&mut self.sent)
                    .into_iter()
                    .partition(|(_, p)| p.sequence > last);
                self.sent = kept;
                again
            }
            _ => {
                let since = r
                    .lost_at
                    .checked_sub(self.ping_timeout)
                    .unwrap_or(self.started);
                let (again, kept) = std::mem::take(&mut self.sent)
                    .into_iter()
                    .partition(|(at, _)| *at >= since);
                self.sent = kept;
                again
            }
        };
        self.sent_bytes = self.sent.iter().map(|(_, p)| p.bytes.len()).sum();
        for (_, packet) in resend.into_iter().rev() {
            if packet.user_chat {
                self.queued_bytes += packet.bytes.len();
            }
            self.data_transmits.push_front(packet);
        }
    }

    /// The connection is lost (or the server asked for a reconnect): start getting it
    /// back, or, mid-attempt, count that attempt as failed.
    pub(super) fn lose(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        kind: ReconnectKind,
        immediate: bool,
    ) {
        match self.state {
            SessionState::Connected if self.local.is_some() => {
                let kind = if self.resume_disabled {
                    ReconnectKind::Full
                } else {
                    kind
                };
                self.state = SessionState::Reconnecting;
                self.reconnection = Some(Reconnection {
                    kind,
                    attempt: 0,
                    lost_at: now,
                    last_failure: reason,
                    phase: Phase::Waiting(now),
                    last_message_seq: None,
                    rtc: RtcSnapshot::default(),
                });
                self.transmits.clear();
                self.next_ping = None;
                self.missed_asks.clear();
                self.schedule_attempt(now, immediate);
            }
            SessionState::Reconnecting => {
                // Without delay only to switch from a resume to a full reconnect: a server
                // that keeps asking for reconnects must not get a loop of them.
                let switching = kind == ReconnectKind::Full
                    && self
                        .reconnection
                        .as_ref()
                        .is_some_and(|r| r.kind == ReconnectKind::Resume);
                let kind = (kind == ReconnectKind::Full).then_some(kind);
                self.attempt_failed(now, reason, kind, immediate && switching)
            }
            SessionState::Joining | SessionState::Connected => self.disconnect(reason),
            SessionState::Disconnected => {}
        }
    }

    /// The current attempt failed: the next one (of `kind`, if given; a full reconnect
    /// stays full) is scheduled, or we give up.
    pub(super) fn attempt_failed(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        kind: Option<ReconnectKind>,
        immediate: bool,
    ) {
        let Some(r) = &mut self.reconnection else {
            return;
        };
        r.last_failure = reason;
        if let Some(kind) = kind {
            r.kind = kind;
        }
        self.transmits.clear();
        self.next_ping = None;
        self.schedule_attempt(now, immediate);
    }

    fn schedule_attempt(&mut self, now: Instant, immediate: bool) {
        let jitter = self.next_jitter();
        let Some(r) = &mut self.reconnection else {
            return;
        };
        let elapsed = now.saturating_duration_since(r.lost_at);
        let delay = if immediate {
            Duration::ZERO
        } else {
            reconnect::delay(r.attempt + 1, elapsed, jitter)
        };
        if elapsed + delay > RECONNECT_GIVE_UP {
            let reason = DisconnectReason::ReconnectFailed {
                attempts: r.attempt,
                last: Box::new(r.last_failure.clone()),
            };
            self.disconnect(reason);
            return;
        }
        r.attempt += 1;
        r.phase = Phase::Waiting(now + delay);
        self.events.push_back(SessionEvent::Reconnecting {
            attempt: r.attempt,
            kind: r.kind,
            reason: r.last_failure.clone(),
        });
    }

    /// A reconnect's timer fired: start the attempt, or fail the one that is overdue.
    pub(super) fn reconnect_timeout(&mut self, now: Instant) {
        let Some(r) = &mut self.reconnection else {
            return;
        };
        match r.phase {
            Phase::Waiting(at) if now >= at => {
                let resume = match (r.kind, &self.local) {
                    (ReconnectKind::Resume, Some(local)) => {
                        Some((local.sid.clone(), reconnect::reason_code(&r.last_failure)))
                    }
                    _ => None,
                };
                let request =
                    reconnect::request(r.kind, r.attempt, resume, self.refresh_token.clone());
                r.phase = Phase::Opening(now + OPEN_TIMEOUT);
                self.reconnect_requests.clear();
                self.reconnect_requests.push_back(request);
            }
            Phase::Opening(at) if now >= at => {
                let why = format!("the socket did not open within {OPEN_TIMEOUT:?}");
                self.attempt_failed(now, DisconnectReason::SignalLost(why), None, false);
            }
            Phase::Answering(at) if now >= at => {
                let why = format!("the server did not answer within {RESPONSE_TIMEOUT:?}");
                self.attempt_failed(now, DisconnectReason::SignalLost(why), None, false);
            }
            Phase::Restoring { deadline, .. } if now >= deadline => {
                let why = format!("media did not come back within {RESTORE_TIMEOUT:?}");
                let full = Some(ReconnectKind::Full);
                self.attempt_failed(now, DisconnectReason::MediaFailed(why), full, false);
            }
            _ => {}
        }
    }

    /// When the reconnection's timer fires (`None` outside one).
    pub(super) fn reconnect_deadline(&self) -> Option<Instant> {
        self.reconnection.as_ref().map(|r| match r.phase {
            Phase::Waiting(at) | Phase::Opening(at) | Phase::Answering(at) => at,
            Phase::Restoring { deadline, .. } => deadline,
        })
    }

    /// Reconnecting with the server's answer in: signalling works as when connected.
    pub(super) fn restoring(&self) -> bool {
        self.reconnection
            .as_ref()
            .is_some_and(|r| matches!(r.phase, Phase::Restoring { .. }))
    }

    /// Our publisher offer was answered: during a reconnect, one step of restoring.
    pub(super) fn publisher_answered(&mut self) {
        if let Some(Reconnection {
            phase: Phase::Restoring {
                publisher_answered, ..
            },
            ..
        }) = &mut self.reconnection
        {
            *publisher_answered = true;
        }
    }

    /// The first frame on a reconnect's socket.
    pub(super) fn handle_reconnect_answer(
        &mut self,
        now: Instant,
        inbound: Inbound,
    ) -> Result<(), FrameError> {
        // Being removed, or the room ending, counts whenever it comes.
        if let Inbound::Leave {
            reason,
            reason_name,
            action: crate::events::LeaveAction::Disconnect,
        } = inbound
        {
            self.disconnect(DisconnectReason::Server {
                code: reason,
                name: reason_name,
            });
            return Ok(());
        }
        let Some(kind) = self
            .reconnection
            .as_ref()
            .filter(|r| matches!(r.phase, Phase::Answering(_)))
            .map(|r| r.kind)
        else {
            return Err(FrameError::Unexpected("a message before the socket opened"));
        };
        match (kind, inbound) {
            (
                _,
                Inbound::Leave {
                    reason,
                    reason_name,
                    ..
                },
            ) => {
                let why = DisconnectReason::Server {
                    code: reason,
                    name: reason_name,
                };
                // The server no longer has our session (STATE_MISMATCH): join again,
                // at once after a resume, after the usual delay after a full one.
                let immediate = kind == ReconnectKind::Resume;
                self.attempt_failed(now, why, Some(ReconnectKind::Full), immediate)
            }
            (
                ReconnectKind::Resume,
                Inbound::Reconnect {
                    ice_servers,
                    last_message_seq,
                },
            ) => self.resumed(now, ice_servers, last_message_seq),
            (ReconnectKind::Full, Inbound::Join(join)) => self.rejoined(now, *join),
            _ => {
                return Err(FrameError::Unexpected(
                    "a message before the reconnect's answer",
                ));
            }
        }
        Ok(())
    }

    /// The server took our resume: tell it what we have, restart ICE.
    fn resumed(&mut self, now: Instant, ice_servers: Vec<IceServer>, last_message_seq: u32) {
        if !ice_servers.is_empty() {
            self.ice_servers = ice_servers;
        }
        let Some(r) = &mut self.reconnection else {
            return;
        };
        let sync = SyncState {
            rtc: std::mem::take(&mut r.rtc),
            published: self.published.values().cloned().collect(),
            received: self
                .data_seen
                .iter()
                .filter_map(|(k, seq)| k.sid().map(|sid| (sid.to_owned(), *seq)))
                .collect(),
        };
        r.last_message_seq = Some(last_message_seq);
        r.phase = Phase::Restoring {
            deadline: now + RESTORE_TIMEOUT,
            publisher_answered: false,
        };
        self.transmits
            .push_back(wire::encode(Outbound::SyncState(Box::new(sync))));
        // An offer outstanding on the old socket will never be answered.
        self.negotiation.restart();
        self.rtc.clear();
        self.rtc.push_back(RtcCommand::RestartPublisherIce);
        self.next_ping = Some(now + self.ping_interval);
    }

    /// A full reconnect's JoinResponse: a new participant for us, the room as it is now
    /// (differences told as ordinary events), new PeerConnections to make.
    fn rejoined(&mut self, now: Instant, join: JoinInfo) {
        self.apply_join_settings(now, &join);
        self.room = join.room.clone();
        self.ice_servers = join.ice_servers;
        self.local = Some(join.local);
        let present: std::collections::HashSet<_> = join.others.iter().map(|p| &p.sid).collect();
        let mut changes = self.roster.retain(|sid| present.contains(sid));
        for p in join.others {
            self.roster.apply(p, &mut changes);
        }
        self.report_changes(changes);
        self.published.clear();
        self.pending_tracks.clear();
        self.negotiation = Negotiation::default();
        self.rtc.clear();
        self.rtc.push_back(RtcCommand::ReplacePeerConnections);
        if let Some(r) = &mut self.reconnection {
            r.last_message_seq = None;
            r.phase = Phase::Restoring {
                deadline: now + RESTORE_TIMEOUT,
                publisher_answered: false,
            };
        }
    }

    /// A small deterministic generator (seeded from the wall clock at creation): jitter
    /// in [0, 1).
    fn next_jitter(&mut self) -> f32 {
        let mut x = self.jitter_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter_state = x;
        (x >> 40) as f32 / (1u64 << 24) as f32
    }
}
