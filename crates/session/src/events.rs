use std::time::Duration;

use crate::chat::ChatMessage;
use crate::ids::{ParticipantIdentity, ParticipantSid, TrackSid};
use crate::model::{ConnectionQuality, Participant, Room, TrackPublication, VideoQuality};
use crate::reconnect::ReconnectKind;

/// What happened in the session, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The server accepted the join: the room, who we are, who is already there.
    Joined {
        room: Room,
        local: Participant,
        others: Vec<Participant>,
    },
    ParticipantJoined(Participant),
    /// Name, metadata, attributes or permissions changed.
    ParticipantUpdated(Participant),
    ParticipantLeft {
        sid: ParticipantSid,
        identity: ParticipantIdentity,
    },
    TrackPublished {
        participant: ParticipantSid,
        track: TrackPublication,
    },
    TrackUnpublished {
        participant: ParticipantSid,
        track: TrackSid,
    },
    TrackMuted {
        participant: ParticipantSid,
        track: TrackSid,
    },
    TrackUnmuted {
        participant: ParticipantSid,
        track: TrackSid,
    },
    /// The whole set of active speakers, loudest first.
    ActiveSpeakersChanged(Vec<ParticipantSid>),
    ConnectionQualityChanged {
        participant: ParticipantSid,
        quality: ConnectionQuality,
    },
    RoomUpdated(Room),
    /// The server paused (`paused: true`) or resumed forwarding a track we subscribe to.
    /// It pauses video when its estimate of our downlink cannot carry even the lowest
    /// layer, so that the sound keeps flowing ("video paused to keep the sound"); it
    /// resumes once the link can carry it again. Fires only on a change.
    TrackStreamStateChanged {
        participant: ParticipantSid,
        track: TrackSid,
        paused: bool,
    },
    /// The server said which simulcast layers of one of our video tracks are received by
    /// someone (LiveKit's dynacast): the others need not be encoded nor sent. Empty: nobody
    /// watches. Fires on each such message about a track of ours; until the first, send
    /// every layer.
    LayersWanted {
        track: TrackSid,
        wanted: Vec<VideoQuality>,
    },
    /// Our AddTrackRequest `cid` is now a publication with a server sid.
    LocalTrackPublished {
        cid: String,
        track: TrackPublication,
    },
    /// The server refused to publish `cid` (not allowed, unsupported…).
    LocalTrackPublishFailed {
        cid: String,
        reason: String,
    },
    /// Our publisher offer had no answer within `OFFER_TIMEOUT` and is made again
    /// (`attempt`, from 2); after `OFFER_ATTEMPTS` the session is `Disconnected`.
    PublisherOfferUnanswered {
        attempt: u32,
    },
    /// A chat message from `from` was started but its end did not come within
    /// `CHAT_STREAM_TIMEOUT` (its sender was cut off mid-message): what arrived of it is
    /// discarded. Fires from `handle_timeout` or `handle_data`.
    ChatIncomplete {
        from: ParticipantIdentity,
        stream_id: String,
    },
    /// `from` sent more than `MAX_CHAT_PER_SECOND` chat messages in a second: `count` of
    /// them were dropped. Fires once that second is over (from `handle_data` or
    /// `handle_timeout`).
    ChatDropped {
        from: ParticipantIdentity,
        count: u64,
    },
    /// A chat message, complete (text streams are reassembled first).
    ChatReceived(ChatMessage),
    /// A signalling round trip was measured.
    RoundTripMeasured {
        rtt_ms: u32,
    },
    /// The connection was lost, or the server asked for a reconnect: attempt `attempt`
    /// (from 1) of getting it back is scheduled. Media and chat wait meanwhile (chat sent
    /// now is queued). Fires each attempt; `Reconnected` or `Disconnected` ends the series.
    Reconnecting {
        attempt: u32,
        kind: ReconnectKind,
        /// What went wrong: the loss, or the previous attempt's failure.
        reason: DisconnectReason,
    },
    /// The session is back, `after` the loss was noticed. After a resume the room is the
    /// same (same sids, same tracks); after a full reconnect `local` is who we are now
    /// (a new sid) and the room's differences were reported as ordinary events first.
    Reconnected {
        kind: ReconnectKind,
        after: Duration,
        local: Participant,
    },
    /// A chat message we sent (`id`) was still queued when the session ended: it was not
    /// delivered. Fires just before `Disconnected`.
    ChatUndelivered {
        id: String,
    },
    /// The session is over: left, ended by the server, or not got back after a loss
    /// (`reason.can_rejoin()` says whether joining again may work). Always the last event.
    Disconnected {
        reason: DisconnectReason,
    },
}

/// Why the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// We asked to leave.
    ClientInitiated,
    /// Nothing came from the server within the ping timeout.
    PingTimeout,
    /// The server sent a LeaveRequest with this LiveKit `DisconnectReason` (number and name).
    Server { code: i32, name: String },
    /// The first server message was not a JoinResponse.
    JoinRefused(String),
    /// The signalling socket closed or failed.
    SignalLost(String),
    /// A PeerConnection failed or an SDP step was refused.
    MediaFailed(String),
    /// The client itself failed (a bug: the room's task panicked); the connections were
    /// closed.
    Internal(String),
    /// The server refused our token on a reconnect (401/403): it expired. A new one from
    /// the backend is needed.
    TokenRefused(String),
    /// The connection was lost and `attempts` reconnects failed; `last` is the last failure.
    ReconnectFailed {
        attempts: u32,
        last: Box<DisconnectReason>,
    },
}

impl DisconnectReason {
    /// Whether joining again may work: not after leaving, being removed, the room ending
    /// or our identity joining elsewhere.
    pub fn can_rejoin(&self) -> bool {
        match self {
            Self::ClientInitiated => false,
            // LiveKit's DisconnectReason: CLIENT_INITIATED, DUPLICATE_IDENTITY,
            // PARTICIPANT_REMOVED, ROOM_DELETED, ROOM_CLOSED, USER_UNAVAILABLE, USER_REJECTED.
            Self::Server { code, .. } => !matches!(code, 1 | 2 | 4 | 5 | 10 | 11 | 12),
            _ => true,
        }
    }
}

/// What the server wants the client to do after a LeaveRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaveAction {
    /// Stop: the session is over.
    Disconnect,
    /// Resume the same session (same sid) now.
    Resume,
    /// Join again from scratch now.
    Reconnect,
}
