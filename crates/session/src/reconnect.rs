//! When and how to get a lost session back: the kind of reconnect, the delays between
//! attempts, when to give up. Pure policy, on the time it is given.

use std::time::{Duration, Instant};

use crate::events::DisconnectReason;
use crate::ids::ParticipantSid;

/// How long after the loss the session stops trying. A class's network blinks are
/// seconds long; past a minute the user is better told (and offered to rejoin).
pub const RECONNECT_GIVE_UP: Duration = Duration::from_secs(60);
/// The second attempt's delay: the first is immediate (most losses are a blink), the second
/// lets a restarting server or a switching Wi-Fi settle.
const SECOND_DELAY: Duration = Duration::from_millis(300);
/// Then one attempt every second or two for the first half-minute, so a cut of ten
/// seconds is over for the user a second or two after the network is back…
const EARLY_DELAY: Duration = Duration::from_secs(1);
const EARLY_SPAN: Duration = Duration::from_secs(30);
/// …and every five to seven seconds after, sparing a server that is down.
const LATE_DELAY: Duration = Duration::from_secs(5);
/// Random extra delay from the third attempt (up to this, early; twice this, late), so a
/// whole class cut off at once does not come back in lockstep.
const MAX_JITTER: Duration = Duration::from_secs(1);
/// The new socket must open within this (the driver's own connect timeout is shorter).
pub(crate) const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The server must answer the new socket (ReconnectResponse or JoinResponse) within this.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the server answered, media must flow again within this; else the next attempt
/// starts over with a full reconnect.
pub(crate) const RESTORE_TIMEOUT: Duration = Duration::from_secs(15);

/// How a lost session is got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconnectKind {
    /// Same participant (same sid, same tracks): a new signalling socket, the
    /// PeerConnections kept with an ICE restart. Nobody else notices more than a pause.
    Resume,
    /// Join again from scratch: a new participant sid, new PeerConnections, our tracks
    /// published again. Others see us leave and come back.
    Full,
}

/// What the I/O layer must do for the next attempt: open a new signalling socket (for a
/// resume, with `reconnect=1&sid=…&reconnect_reason=…`) with [`ReconnectRequest::token`],
/// then call [`crate::Session::handle_signal_opened`] or
/// [`crate::Session::handle_reconnect_failed`]. For [`ReconnectKind::Full`], close both
/// PeerConnections first (new ones follow [`crate::RtcCommand::ReplacePeerConnections`]).
#[derive(Clone, PartialEq, Eq)]
pub struct ReconnectRequest {
    pub kind: ReconnectKind,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// For a resume: who we are, and LiveKit's `ReconnectReason` number.
    pub resume: Option<(ParticipantSid, i32)>,
    token: Option<String>,
}

impl ReconnectRequest {
    /// The newest token the server gave (`refresh_token`), if any: the original one may
    /// have expired during a long class. `None`: use the original.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl std::fmt::Debug for ReconnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectRequest")
            .field("kind", &self.kind)
            .field("attempt", &self.attempt)
            .field("resume", &self.resume)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What the WebRTC layer has, for the server to check on a resume (`SyncState`). Read it
/// off the PeerConnections when the new socket opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtcSnapshot {
    /// The subscriber PC's remote description (the server's last offer)…
    pub subscriber_offer: Option<String>,
    /// …and its local one (our answer).
    pub subscriber_answer: Option<String>,
    pub data_channels: Vec<DataChannelInfo>,
}

/// One of the data channels on our PeerConnections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChannelInfo {
    pub label: String,
    /// The SCTP stream id.
    pub id: u16,
    pub target: crate::negotiation::SignalTarget,
}

/// Why an attempt could not open its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalFailure {
    /// 401/403: the token is refused. Trying again cannot help.
    Unauthorized(String),
    /// Anything else (no route, refused, timed out, 5xx): try again later.
    Unreachable(String),
}

/// Where one reconnection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The next attempt starts at this time.
    Waiting(Instant),
    /// The request was handed out; the socket is being opened.
    Opening(Instant),
    /// The socket is open; the server's first answer is due by then.
    Answering(Instant),
    /// The server answered; media must flow again by then.
    Restoring {
        deadline: Instant,
        /// The answer to our ICE-restart (resume) or first (full) publisher offer came.
        publisher_answered: bool,
    },
}

#[derive(Debug)]
pub(crate) struct Reconnection {
    pub kind: ReconnectKind,
    pub attempt: u32,
    /// When the loss was noticed: `Reconnected { after }` counts from here.
    pub lost_at: Instant,
    /// What went wrong most recently: reported if we give up.
    pub last_failure: DisconnectReason,
    pub phase: Phase,
    /// The ReconnectResponse's `last_message_seq`: reliable packets after it are resent.
    pub last_message_seq: Option<u32>,
    /// What the PeerConnections had when the resume's socket opened.
    pub rtc: RtcSnapshot,
}

/// The delay before attempt `attempt` (from 1), `elapsed` after the loss; the caller
/// supplies the randomness (`jitter_unit` in [0, 1)): the session is deterministic.
pub(crate) fn delay(attempt: u32, elapsed: Duration, jitter_unit: f32) -> Duration {
    let jitter = MAX_JITTER.mul_f32(jitter_unit.clamp(0.0, 1.0));
    match attempt {
        0 | 1 => Duration::ZERO,
        2 => SECOND_DELAY,
        _ if elapsed < EARLY_SPAN => EARLY_DELAY + jitter,
        _ => LATE_DELAY + jitter * 2,
    }
}

pub(crate) fn request(
    kind: ReconnectKind,
    attempt: u32,
    resume: Option<(ParticipantSid, i32)>,
    token: Option<String>,
) -> ReconnectRequest {
    ReconnectRequest {
        kind,
        attempt,
        resume,
        token,
    }
}

/// LiveKit's `ReconnectReason` for the URL: what the server logs about the resume.
pub(crate) fn reason_code(reason: &DisconnectReason) -> i32 {
    match reason {
        DisconnectReason::MediaFailed(_) => 2, // RR_PUBLISHER_FAILED
        _ => 1,                                // RR_SIGNAL_DISCONNECTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_at_once_stay_short_for_half_a_minute_then_lengthen_with_jitter() {
        let at = Duration::from_secs;
        assert_eq!(delay(1, at(0), 0.9), Duration::ZERO);
        assert_eq!(delay(2, at(0), 0.9), Duration::from_millis(300));
        assert_eq!(delay(3, at(1), 0.0), at(1));
        assert_eq!(delay(3, at(1), 0.5), Duration::from_millis(1500));
        assert_eq!(delay(9, at(29), 0.99).max(at(2)), at(2));
        assert_eq!(delay(10, at(30), 0.0), at(5));
        assert_eq!(delay(u32::MAX, at(59), 2.0), at(7));
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let r = request(ReconnectKind::Full, 1, None, Some("eyJsecret".into()));
        assert!(!format!("{r:?}").contains("eyJ"));
        assert_eq!(r.token(), Some("eyJsecret"));
    }
}
